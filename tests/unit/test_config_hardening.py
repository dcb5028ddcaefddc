"""Issue 15, items 6 and 7: values the kernels or services would refuse, and files that are not plain YAML
files, each get a problem naming file, key and reason; the folder is left as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms.config import DEFAULT_CONFIG_DIR, PROJECT_ROOT, ConfigError, load_config

OMS = str(Path(sys.executable).parent / "oms")


@pytest.fixture()
def cfg_dir(tmp_path: Path) -> Path:
    target = tmp_path / "configs"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
        if not p.is_symlink() and not p.is_fifo()
    }


def problems(cfg_dir: Path, env: dict | None = None) -> list[str]:
    before = fingerprint(cfg_dir)
    with pytest.raises(ConfigError) as info:
        load_config(cfg_dir, env=env or {})
    assert fingerprint(cfg_dir) == before  # checking never writes
    return [str(p) for p in info.value.problems]


def the_problem(cfg_dir: Path, env: dict | None = None) -> str:
    found = problems(cfg_dir, env)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- item 6: kernel conversions
@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "max_order_notional_usdt: 50000",
            "max_order_notional_usdt: 1.0e+308",
            "risk.yaml: defaults.max_order_notional_usdt: 1E+308 is out of the int64 range in units of 0.00000001",
        ),
        (
            "max_open_orders: 200",
            "max_open_orders: 1000000000000000000000000000000",
            "risk.yaml: defaults.max_open_orders: Input should be less than or equal to 9223372036854775807",
        ),
        (
            "max_gross_exposure_usdt: 2000000",
            "max_gross_exposure_usdt: 100000000000",
            "risk.yaml: global.max_gross_exposure_usdt: 100000000000 is out of the int64 range",
        ),
        (
            "max_leverage: 5",
            "max_leverage: 1.0000001",
            "risk.yaml: defaults.max_leverage: 1.0000001 is not a multiple of 0.000001 (the kernels hold ratios",
        ),
        (
            "max_drawdown_pct: 20",
            "max_drawdown_pct: 12.34567",
            "risk.yaml: defaults.max_drawdown_pct: 12.34567 is not a multiple of 0.0001",
        ),
        (
            "orders_per_second: 50 ",
            "orders_per_second: 0.0005 ",
            "risk.yaml: defaults.orders_per_second: 0.0005 is not a multiple of 0.001",
        ),
        (
            "max_open_orders: 200",
            "max_open_orders: true",
            "risk.yaml: defaults.max_open_orders: Input should be a valid integer (got True)",
        ),
        (
            "max_leverage: 5",
            "max_leverage: true",
            "risk.yaml: defaults.max_leverage: Decimal input should be an integer, float, string or Decimal",
        ),
    ],
)
def test_risk_values_the_kernels_refuse_are_refused_by_the_check(cfg_dir, old, new, expected):
    edit(cfg_dir / "risk.yaml", old, new)
    assert the_problem(cfg_dir).startswith(expected)


def test_account_money_must_fit_the_kernels_too(cfg_dir):
    edit(cfg_dir / "accounts.yaml", "max_balance_usdt: 10000}", "max_balance_usdt: 0.000000001}")
    assert the_problem(cfg_dir).startswith(
        "accounts.yaml: accounts.binance.sub_spot_arb.max_balance_usdt: 0.000000001 is not a multiple of 0.00000001"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("cpu_cores: [1]", "cpu_cores: []", "stream.yaml: daemon.cpu_cores: List should have at least 1 item"),
        ("kernel_cores: [1]", "kernel_cores: [true]", "stream.yaml: daemon.kernel_cores.0: Input should be a valid"),
        ("health_port: 8780", "health_port: true", "stream.yaml: daemon.health_port: Input should be a valid integer"),
        ("health_port: 8780", "health_port: 8780.0", "stream.yaml: daemon.health_port: Input should be a valid"),
        ("{enabled: true}", "{enabled: 1}", "stream.yaml: services.local_exchange.enabled: Input should be a valid"),
        ("data_dir: data", 'data_dir: ""', "stream.yaml: services.data_dir: must name a folder"),
        ("data_dir: data", 'data_dir: "  "', "stream.yaml: services.data_dir: must name a folder"),
        (
            "finished_order_retention_s: 3600",
            "finished_order_retention_s: 5",
            "stream.yaml: daemon.finished_order_retention_s: Input should be greater than or equal to 10",
        ),
        (
            "finished_order_retention_s: 3600",
            "finished_order_retention_s: 1h",
            "stream.yaml: daemon.finished_order_retention_s: Input should be a valid integer",
        ),
        (
            "finished_orders_max: 100000",
            "finished_orders_max: 10",
            "stream.yaml: daemon.finished_orders_max: Input should be greater than or equal to 1000",
        ),
        (
            "finished_orders_max: 100000",
            "finished_orders_max: 1e5",
            "stream.yaml: daemon.finished_orders_max: Input should be a valid integer",
        ),
    ],
)
def test_stream_values_the_daemon_or_services_refuse(cfg_dir, old, new, expected):
    edit(cfg_dir / "stream.yaml", old, new)
    assert the_problem(cfg_dir).startswith(expected)


def test_the_finished_order_memory_reaches_the_daemon_settings(cfg_dir):
    from stream.daemon import DaemonSettings

    edit(cfg_dir / "stream.yaml", "finished_order_retention_s: 3600", "finished_order_retention_s: 600")
    edit(cfg_dir / "stream.yaml", "finished_orders_max: 100000", "finished_orders_max: 5000")
    s = DaemonSettings.from_config(load_config(cfg_dir, env={}))
    assert (s.finished_order_retention_s, s.finished_orders_max) == (600.0, 5000)
    d = load_config(DEFAULT_CONFIG_DIR, env={}).stream.daemon
    assert (d.finished_order_retention_s, d.finished_orders_max) == (3600, 100_000)


def test_data_dir_from_the_environment_must_be_a_usable_folder(cfg_dir, tmp_path):
    suffix = " (set by environment variable OMS_DATA_DIR)"
    assert the_problem(cfg_dir, {"OMS_DATA_DIR": ""}).startswith("stream.yaml: services.data_dir: must name a folder")
    assert the_problem(cfg_dir, {"OMS_DATA_DIR": ""}).endswith(suffix)
    assert the_problem(cfg_dir, {"OMS_DATA_DIR": "/etc/passwd"}) == (
        "stream.yaml: services.data_dir: /etc/passwd is a file, not a folder" + suffix
    )
    assert the_problem(cfg_dir, {"OMS_DATA_DIR": "/etc/passwd/oms"}) == (
        "stream.yaml: services.data_dir: /etc/passwd/oms cannot be created: /etc/passwd is a file, not a folder"
        + suffix
    )
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert the_problem(cfg_dir, {"OMS_DATA_DIR": str(fifo)}).startswith(
        f"stream.yaml: services.data_dir: {fifo} is a FIFO (named pipe), not a folder"
    )
    fresh = tmp_path / "new" / "data"
    assert load_config(cfg_dir, env={"OMS_DATA_DIR": str(fresh)}).data_dir() == fresh
    assert not fresh.parent.exists()  # checking creates nothing


def test_empty_data_dir_never_points_at_the_project_root(cfg_dir):
    edit(cfg_dir / "stream.yaml", "data_dir: data", 'data_dir: ""')
    problems(cfg_dir)
    assert load_config(env={}).data_dir() != PROJECT_ROOT


# Random values for each risk field: whatever `oms config check` accepts, the kernels convert (same table).
risk_fields = st.sampled_from(
    [
        "max_order_notional_usdt",
        "max_gross_exposure_usdt",
        "max_leverage",
        "max_open_orders",
        "orders_per_second",
        "order_burst",
        "max_drawdown_pct",
        "price_band_pct",
    ]
)
numbers = st.one_of(
    st.integers(min_value=-5, max_value=2**70),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(lambda d: abs(d.adjusted()) < 40),
    st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=risk_fields, value=numbers, overriding=st.booleans())
def test_what_the_check_accepts_the_kernels_convert(field, value, overriding):
    from kernels.risk_limits import risk_limits  # the kernels' own conversion, the one the daemon runs
    from oms.config.models import RiskConfig

    raw = {
        "global": {"max_gross_exposure_usdt": 1000, "max_daily_loss_usdt": 10},
        "defaults": {
            "max_order_notional_usdt": 1,
            "max_position_notional_usdt": 1,
            "max_gross_exposure_usdt": 1,
            "max_leverage": 1,
            "max_open_orders": 1,
            "orders_per_second": 1,
            "order_burst": 1,
            "max_daily_loss_usdt": 1,
            "max_drawdown_pct": 1,
            "price_band_pct": 1,
        },
    }
    if overriding:
        raw["accounts"] = {"x": {"a": {field: value}}}
    else:
        raw["defaults"][field] = value
    try:
        risk = RiskConfig.model_validate(raw)
    except ValueError:
        return  # refused by the check, with its reason: nothing reaches the kernels
    limits = risk_limits(risk, [("x", "a")])  # must not raise
    assert limits.lim.dtype.name == "int64"


def test_core_check_is_the_one_affinity_runs():
    from kernels.affinity import pin_thread
    from oms.config.machine import core_problem

    assert core_problem([]) == "no cores given (list at least one core, e.g. [0])"
    report = pin_thread([])
    assert not report.ok and "no cores given" in report.message and "running unpinned" in report.message


# --------------------------------------------------------------------------- item 7: files and YAML
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("? [a, b]\n: 1\n", "risk.yaml: line 1 column 3: a list cannot be a key"),
        ("global: {? {a: 1} : 2}\n", "risk.yaml: global (line 1 column 12): a mapping cannot be a key"),
        ("a: &a [*a]\n", "risk.yaml: a.0 (line 1 column 4): recursive alias: an anchor contains itself"),
        ("a: 1\n---\nb: 2\n", "risk.yaml: line 2 column 1: malformed YAML: but found another document"),
        ("a: !!python/object:os.system {}\n", "risk.yaml: line 1 column 4: malformed YAML: could not determine"),
        ("on: 1\n", "risk.yaml: line 1 column 1: key 'on' is a boolean, not text; quote it ('on')"),
        ("- 1\n- 2\n", "risk.yaml: (top level): expected a mapping at the top level, got list"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "risk.yaml: line 1 column 67: malformed YAML: nested more than 64"),
        ("a: " + "{b: " * 300 + "1" + "}" * 300 + "\n", "risk.yaml: line 1 column 253: malformed YAML: nested more"),
    ],
)
def test_yaml_shapes_get_a_reason_and_a_place(cfg_dir, text, expected):
    (cfg_dir / "risk.yaml").write_text(text)
    assert the_problem(cfg_dir).startswith(expected)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("1", "key '1' is a number, not text; quote it ('1') if it is meant as a name"),
        ("~", "key '~' is null, not text"),
        ("2026-01-01", "key '2026-01-01' is a date, not text; quote it ('2026-01-01') if it is meant as a name"),
    ],
)
def test_exchange_keys_that_are_not_text(cfg_dir, key, expected):
    edit(cfg_dir / "exchanges.yaml", "  bybit:\n", f"  {key}:\n")
    assert the_problem(cfg_dir) == f"exchanges.yaml: exchanges (line 25 column 3): {expected}"


def test_nul_byte_is_reported_by_line_and_column(cfg_dir):
    edit(cfg_dir / "risk.yaml", "defaults:\n", "defaults:\x00\n")
    assert the_problem(cfg_dir) == (
        "risk.yaml: line 8 column 10: malformed YAML: invalid character U+0000 (not allowed in YAML)"
    )


def test_invalid_utf8_is_reported_by_line_and_column(cfg_dir):
    (cfg_dir / "risk.yaml").write_bytes(b"global:\n  max: \xff\n")
    assert the_problem(cfg_dir) == "risk.yaml: line 2 column 8: not UTF-8 text: byte 0xff cannot be decoded"


def test_merge_keys_are_supported_and_explicit_keys_override(cfg_dir):
    text = (cfg_dir / "risk.yaml").read_text()
    text = text.replace(
        "accounts:\n  binance:\n",
        "accounts:\n  binance:\n    sub_spot_arb: {<<: [*small, *big], max_leverage: 2}\n",
    )
    text = "x-limits:\n  small: &small {max_open_orders: 7, order_burst: 9}\n  big: &big {max_open_orders: 99}\n" + text
    (cfg_dir / "risk.yaml").write_text(text)
    cfg = load_config(cfg_dir, env={})
    arb = cfg.risk.limits_for("binance", "sub_spot_arb")
    assert (arb.max_open_orders, arb.order_burst, arb.max_leverage) == (7, 9, 2)  # first merge source wins


def test_duplicate_keys_beside_a_merge_and_bad_merges(cfg_dir):
    base = (cfg_dir / "risk.yaml").read_text()
    (cfg_dir / "risk.yaml").write_text(
        "x-d: &d {max_open_orders: 7}\n" + base.replace("  trading_state: active\n", "  <<: *d\n  max_leverage: 6\n")
    )
    assert the_problem(cfg_dir) == (
        "risk.yaml: defaults.max_leverage (line 21 column 3): duplicate key 'max_leverage' (first at line 13 column 3)"
    )
    (cfg_dir / "risk.yaml").write_text("x-d: &d [1]\n" + base.replace("  trading_state: active\n", "  <<: *d\n"))
    assert the_problem(cfg_dir) == (
        "risk.yaml: defaults (line 1 column 10): a merge key `<<` takes a mapping (`<<: *anchor`) or a list of them"
    )


def test_a_folder_a_fifo_a_symlink_loop_and_a_broken_link_each_say_so(cfg_dir):
    (cfg_dir / "risk.yaml").unlink()
    (cfg_dir / "risk.yaml").mkdir()
    (cfg_dir / "stream.yaml").unlink()
    os.mkfifo(cfg_dir / "stream.yaml")
    (cfg_dir / "accounts.yaml").unlink()
    (cfg_dir / "accounts.yaml").symlink_to(cfg_dir / "accounts.yaml")
    (cfg_dir / "strategies.yaml").unlink()
    (cfg_dir / "strategies.yaml").symlink_to(cfg_dir / "gone.yaml")
    found = problems(cfg_dir)
    assert f"accounts.yaml: (top level): symbolic link loop: {cfg_dir / 'accounts.yaml'} never reaches a file" in found
    assert f"risk.yaml: (top level): {cfg_dir / 'risk.yaml'} is a folder, not a YAML file" in found
    assert (
        f"strategies.yaml: (top level): broken symbolic link: {cfg_dir / 'strategies.yaml'} -> {cfg_dir / 'gone.yaml'}"
    ) in found
    assert (
        f"stream.yaml: (top level): {cfg_dir / 'stream.yaml'} is a FIFO (named pipe), not a regular file; "
        "it was not opened"
    ) in found


def test_config_folder_that_is_a_file_or_a_loop(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is not a folder"):
        load_config(tmp_path / "file", env={})
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(ConfigError, match="configuration folder is a symbolic link loop"):
        load_config(tmp_path / "loop", env={})


def _unprivileged(cmd: list[str]) -> list[str]:
    """Run ``cmd`` without the capabilities that let root ignore file modes (so 0o000 means no access)."""
    if os.geteuid() != 0:
        return cmd
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *cmd]


def test_unreadable_folder_and_file_through_the_cli(cfg_dir):
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot take away root's access to a 0o000 folder")
    (cfg_dir / "risk.yaml").chmod(0o000)
    try:
        res = subprocess.run(
            _unprivileged([OMS, "config", "check", str(cfg_dir)]), capture_output=True, text=True, timeout=60
        )
    finally:
        (cfg_dir / "risk.yaml").chmod(0o644)
    assert res.returncode == 1 and "Traceback" not in res.stdout + res.stderr
    assert f"risk.yaml: (top level): cannot read {cfg_dir / 'risk.yaml'}: permission denied" in res.stdout
    cfg_dir.chmod(0o000)
    try:
        res = subprocess.run(
            _unprivileged([OMS, "config", "check", str(cfg_dir)]), capture_output=True, text=True, timeout=60
        )
    finally:
        cfg_dir.chmod(0o755)
    assert res.returncode == 1 and "unexpected" not in res.stdout + res.stderr
    assert f"{cfg_dir}: (top level): configuration folder is not readable: permission denied" in res.stdout


yaml_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8), st.just("BTC/USDT")
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["accounts.yaml", "exchanges.yaml", "risk.yaml", "strategies.yaml", "stream.yaml"]),
    data=st.dictionaries(
        st.sampled_from(["accounts", "exchanges", "global", "defaults", "daemon", "services", "strategies", "x"]),
        yaml_values,
        max_size=4,
    ),
)
def test_any_yaml_value_gives_problems_never_a_crash(tmp_path_factory, name, data):
    import yaml

    folder = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(DEFAULT_CONFIG_DIR, folder, dirs_exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(data))
    try:
        load_config(folder, env={})
    except ConfigError as exc:
        assert all(p.file and p.reason for p in exc.problems)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_gives_problems_never_a_crash(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(DEFAULT_CONFIG_DIR, folder, dirs_exist_ok=True)
    (folder / "risk.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(folder, env={})
    except ConfigError as exc:
        assert all(p.file and p.reason for p in exc.problems)
