"""The shared fixtures give working servers to the real client libraries (nats-py, hvac, Prefect)."""

from __future__ import annotations

from nats.js.api import StreamConfig

from oms.services.process import port_in_use


async def test_nats_fixture_has_jetstream_with_file_storage(nats_server):
    nc = await nats_server.connect()
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="HARNESS", subjects=["alerts.harness.>"]))
        ack = await js.publish("alerts.harness.binance.main", b"{}", headers={"Nats-Msg-Id": "id-1"})
        dup = await js.publish("alerts.harness.binance.main", b"{}", headers={"Nats-Msg-Id": "id-1"})
        assert ack.seq == 1 and dup.duplicate
        info = await js.stream_info("HARNESS")
        assert info.state.messages == 1 and str(getattr(info.config.storage, "value", info.config.storage)) == "file"
        await js.delete_stream("HARNESS")
    finally:
        await nc.close()
    assert nats_server.store_dir.is_dir()


def test_openbao_fixture_is_unsealed_with_kv_v2(openbao):
    client = openbao.client()
    assert client.is_authenticated() and not client.sys.is_sealed()
    client.secrets.kv.v2.create_or_update_secret(path="exchanges/harness", secret={"v": "1"})
    client.secrets.kv.v2.create_or_update_secret(path="exchanges/harness", secret={"v": "2"})
    latest = client.secrets.kv.v2.read_secret_version(path="exchanges/harness", raise_on_deleted_version=True)
    first = client.secrets.kv.v2.read_secret_version(path="exchanges/harness", version=1, raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"v": "2"} and latest["data"]["metadata"]["version"] == 2
    assert first["data"]["data"] == {"v": "1"}


def test_prefect_fixture_runs_a_flow_against_its_own_server(prefect_server):
    from prefect import flow  # imported here: conftest made PREFECT_HOME hermetic before any import
    from prefect.client.orchestration import get_client

    @flow(name="harness-check")
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    with get_client(sync_client=True) as client:
        assert str(client.api_url).startswith(prefect_server)
        runs = client.read_flow_runs()
        assert [r.state.type.value for r in runs if r.name] == ["COMPLETED"]
    port = int(prefect_server.rsplit(":", 1)[1].split("/")[0])
    assert port_in_use(port)
