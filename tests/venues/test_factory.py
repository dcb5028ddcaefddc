"""The clients factory: contexts from configs/ (endpoints local and live, budgets, shared clock and IP, keys,
account refs), the connector chosen by library, key switch; with a minimal connector against a real local
exchange (its time endpoint measures the clock)."""

from __future__ import annotations

import json

import aiohttp
import pytest

from localex.server.state import ServerConfig
from oms.config import load_config
from oms.keys import DemoKeysFile, EnvKeys, KeyNotFound
from oms.model import Instrument, InstrumentSpec, Market
from oms.venues import Capabilities, Connector, VenueMetadata
from oms.venues.factory import VenueFactory
from tests.localex.conftest import free_port, start_server


class _Instruments:
    def __init__(self, ctx):
        self.ctx, self.loaded = ctx, 0

    async def load(self, reload=False):
        self.loaded += 1
        return {"BTC/USDT": Instrument(InstrumentSpec("BTC/USDT"))}


class _Execution:
    def __init__(self, ctx, http):
        self.context, self.http, self.keys, self.closed = ctx, http, [ctx.credentials], False

    async def server_time_ns(self):
        async with self.http.get(self.context.endpoints.rest_url + "/api/v3/time") as r:
            return (await r.json())["serverTime"] * 1_000_000

    async def set_credentials(self, creds):
        self.keys.append(creds)

    async def close(self):
        self.closed = True


class _UserData:
    def __init__(self, ctx, execution):
        self.ctx, self.execution, self.keys, self.closed = ctx, execution, [], False

    async def set_credentials(self, creds):
        self.keys.append(creds)

    async def close(self):
        self.closed = True


class _TestConnector(Connector):
    library = "test"

    def __init__(self, http):
        self.http, self.built = http, []

    def capabilities(self, exchange, market):
        return Capabilities(market=market)

    def metadata(self, exchange, market):
        return VenueMetadata(exchange=exchange, market=market, capabilities=self.capabilities(exchange, market))

    def instrument_provider(self, ctx):
        self.built.append(("instruments", ctx))
        return _Instruments(ctx)

    def market_data_client(self, ctx, instruments):
        self.built.append(("market_data", ctx))
        return _UserData(ctx, None)

    def execution_client(self, ctx, instruments):
        self.built.append(("execution", ctx))
        return _Execution(ctx, self.http)

    def user_data_stream(self, ctx, instruments, execution):
        return _UserData(ctx, execution)


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    data = tmp_path_factory.mktemp("localex")
    for server in start_server(ServerConfig(port=free_port(), data_dir=str(data), replay=False)):
        yield server, data


ENV = {
    "OMS_KEY_BINANCE_MAIN_API_KEY": "k-main",
    "OMS_KEY_BINANCE_MAIN_SECRET": "s-main",
    "OMS_KEY_BINANCE_SUB_FUTURES_BASIS_API_KEY": "k-basis",
    "OMS_KEY_BINANCE_SUB_FUTURES_BASIS_SECRET": "s-basis",
}


async def test_contexts_and_clients(venue):
    server, _ = venue
    async with aiohttp.ClientSession() as http:
        connector = _TestConnector(http)
        asked = []
        factory = VenueFactory(
            load_config(),
            EnvKeys(ENV),
            local_url=server.url,
            connectors=lambda lib: asked.append(lib) or connector,
            options={"binance": {"ws_api_timeout_s": 2.0}},
        )
        spot = await factory.account_clients("binance", "main", "spot")
        assert asked == ["python-binance"]  # the library of configs/exchanges.yaml
        ctx = spot.context
        assert (str(ctx.account), ctx.market, ctx.credentials.api_key) == ("binance/main", Market.SPOT, "k-main")
        port = server.url.rsplit(":", 1)[1]
        assert ctx.endpoints.rest_url == server.url and ctx.endpoints.venue == "local"
        assert ctx.endpoints.ws_url == f"ws://127.0.0.1:{port}"
        assert ctx.endpoints.ws_api_url == f"ws://127.0.0.1:{port}/ws-api/v3"
        assert ctx.options == {"library": "python-binance", "venue": "local", "ws_api_timeout_s": 2.0}
        assert ctx.limiter.weight[60].limit == 1200 and ctx.limiter.orders[10].limit == 100
        assert abs(ctx.clock.offset_ns) < 2 * 10**9 and ctx.clock.resyncs == 1  # measured from the venue
        assert await factory.account_clients("binance", "main", "spot") is spot

        basis = await factory.account_clients("binance", "sub_futures_basis", "usdm")
        assert basis.context.endpoints.ws_url.endswith("/fstream")
        assert basis.context.endpoints.ws_api_url.endswith("/ws-fapi/v1")
        assert basis.context.limiter.weight[60].limit == 2400
        basis_spot = await factory.account_clients("binance", "sub_futures_basis", "spot")
        # one IP budget and one clock per exchange market, one instrument provider loaded once
        assert basis_spot.context.limiter.ip is spot.context.limiter.ip
        assert basis.context.limiter.ip is not spot.context.limiter.ip
        assert basis_spot.context.clock is spot.context.clock and basis_spot.instruments is spot.instruments
        assert spot.instruments.loaded == 1 and spot.instruments.ctx.credentials is None

        # key switch goes to both the execution client and the user stream
        creds = await spot.rotate(EnvKeys({**ENV, "OMS_KEY_BINANCE_MAIN_API_KEY": "k-main-2"}))
        assert spot.execution.keys[-1] is creds and spot.user_data.keys[-1] is creds and creds.api_key == "k-main-2"

        with pytest.raises(ValueError, match="binance/sub_spot_arb has usdm disabled"):
            await factory.account_clients("binance", "sub_spot_arb", "usdm")
        with pytest.raises(KeyError, match="account binance/nobody is not in configs/accounts.yaml"):
            await factory.account_clients("binance", "nobody", "spot")
        with pytest.raises(KeyError, match="exchange 'kraken' is not in configs/exchanges.yaml"):
            await factory.account_clients("kraken", "main", "spot")
        with pytest.raises(KeyNotFound, match="binance/sub_market_making"):
            await factory.account_clients("binance", "sub_market_making", "spot")
        md = await factory.market_data("binance", "spot")
        assert md is await factory.market_data("binance", "spot")
        await factory.close()
        assert spot.execution.closed and spot.user_data.closed and md.closed


async def test_live_endpoints_and_refs_from_demo_keys(venue, tmp_path):
    server, data = venue
    cfg_dir = tmp_path / "configs"
    cfg_dir.mkdir()
    for f in load_config().dir.glob("*.yaml"):
        (cfg_dir / f.name).write_text(f.read_text())
    config = load_config(cfg_dir, env={"OMS_BINANCE_VENUE": "live", "OMS_BINANCE_USDM_REST_URL": "https://f.example"})
    keys = DemoKeysFile(data / "localex-demo-keys.json", accounts={"main": "demo_main"})
    factory = VenueFactory(config, keys, connectors=lambda lib: _TestConnector(None))
    ep = factory.endpoints("binance", "usdm")
    assert (ep.rest_url, ep.ws_url, ep.venue) == ("https://f.example", "wss://fstream.binance.com", "live")
    assert factory.endpoints("binance", "spot").ws_api_url == "wss://ws-api.binance.com:443/ws-api/v3"
    refs = factory.account_refs("binance")
    demo = {r["accountId"]: r for r in json.loads((data / "localex-demo-keys.json").read_text())["keys"]}
    assert refs["main"] == demo["demo_main"]["email"]
    ctx = factory.context("binance", "main", "spot", keys.get("binance", "spot", "main"))
    assert ctx.account_refs == refs and ctx.credentials.can_withdraw
    assert factory.account_limits("binance", "sub_market_making", "spot").orders_per_10s == 50
