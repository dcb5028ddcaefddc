"""The ``onboard-exchange`` flow: a new exchange from ccxt, checked end to end, ending in a reviewable config.

Tasks, in order (each with retries where the network is involved):

1. ``check-capabilities``: ccxt's ``has`` of the exchange against what the platform needs (``NEEDS``: markets,
   balances, orders and their queries, fills, the server clock, order book, and the ccxt.pro streams for
   trades, depth and the account's orders; perpetuals also positions and leverage). A missing one refuses the
   exchange, naming every missing capability per market: nothing else is done;
2. ``load-markets``: its markets through the platform's ccxt connector (from the exchange, or from the local
   exchange when ``venue`` is ``local``), giving the symbol map (unified ``BTC/USDT`` -> the exchange's id);
3. the config stanzas: ``exchanges.yaml`` (library ccxt, its ccxt id, the live endpoints, rate limits from
   ccxt's ``rateLimit``) and ``accounts.yaml`` (the accounts, the first one main), validated by the same
   models ``oms config check`` uses;
4. ``create-vault-paths``: each account's key path ``secret/exchanges/{exchange}_{market}_{account}`` in
   Vault (``oms.keys``; KV v2 metadata, no secret). On the local venue the flow also opens the accounts there
   (admin API), funds them with test money and stores their keys; on a live venue the operator stores them
   (``oms keys put``) and runs the flow again;
5. ``smoke-test``: the connector contract's short form on the main account, per market: balances, a minimal
   limit order far from the market (above the minimum notional), its cancellation;
6. a reviewable YAML file ``{out_dir}/{exchange}.yaml`` (default ``data/onboarding/``) and a markdown artifact.

The exchange's platform name is its ccxt id (the ccxt connector reads ccxt's metadata by that name).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import ccxt
import ccxt.pro as ccxt_pro
import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE

from oms.config import Config, load_config
from oms.config.models import BINANCE_WIRE_CCXT_IDS, AccountConfig, AccountsFile, ExchangeConfig, ExchangesFile
from oms.keys import venue as local_venue
from oms.keys.factory import open_store
from oms.keys.provider import KeyNotFound
from oms.keys.redact import install_redaction
from oms.keys.store import VaultKeyStore
from oms.model import CancelOrder, OrderEventKind, OrderType, PlaceOrder, Side, TimeInForce
from oms.venues.factory import VenueFactory

log = logging.getLogger("flows.onboard_exchange")

# What the platform needs of an exchange, per market (ccxt ``has`` keys that must be True).
NEEDS: dict[str, tuple[str, ...]] = {
    "all": ("fetchMarkets", "fetchBalance", "createOrder", "cancelOrder", "fetchOrder", "fetchOpenOrders",
            "fetchMyTrades", "fetchOrderBook", "fetchTime", "watchOrderBook", "watchTrades", "watchOrders"),
    "spot": ("spot",),
    "usdm": ("swap", "fetchPositions", "setLeverage"),
}  # fmt: skip
TEST_FUNDS = "10000"  # USDT given to each account opened on the local venue
REST_KEYS = {"spot": ("public", "spot", "rest", "v3", "v5"), "usdm": ("fapiPublic", "futures", "swap", "rest", "v5")}
WS_KEYS = {"spot": ("spot", "public", "ws"), "usdm": ("future", "linear", "swap", "usdm", "public", "ws")}


class OnboardRefused(Exception):
    """The exchange cannot serve the platform (the message names everything missing)."""


class OnboardFailed(Exception):
    """A step of the onboarding failed (the message names the step, the exchange and the cause)."""


def _backoff(retries: int) -> list[float]:
    return [min(2.0**i, 30.0) for i in range(max(retries, 1))]


# ------------------------------------------------------------------------------------------------ capabilities
def missing_capabilities(has: dict, markets: list[str]) -> dict[str, list[str]]:
    """Per market (and ``all``), the capabilities the platform needs that ``has`` does not give natively."""
    out = {}
    for part in ("all", *markets):
        lacking = [k for k in NEEDS[part] if has.get(k) is not True]
        if lacking:
            out[part] = [f"{k} ({'emulated' if has.get(k) == 'emulated' else 'no'})" for k in lacking]
    return out


@task(name="check-capabilities", cache_policy=NO_CACHE, persist_result=False)
def check_capabilities(ccxt_id: str, markets: list[str]) -> dict:
    cls = getattr(ccxt_pro, ccxt_id, None)
    if ccxt_id not in ccxt.exchanges or not isinstance(cls, type):
        raise OnboardRefused(f"ccxt {ccxt.__version__} has no exchange {ccxt_id!r} with streams (ccxt.pro)")
    ex = cls()
    missing = missing_capabilities(ex.has, markets)
    if missing:
        parts = "; ".join(f"{part}: lacks {', '.join(caps)}" for part, caps in missing.items())
        raise OnboardRefused(f"ccxt exchange {ccxt_id!r} cannot serve the platform ({parts})")
    return {"ccxt_version": ccxt.__version__, "rate_limit_ms": float(ex.rateLimit or 1),
            "has": {k: ex.has.get(k) for part in ("all", *markets) for k in NEEDS[part]},
            "urls": ex.urls.get("api") or {}, "name": ex.name}  # fmt: skip


# ------------------------------------------------------------------------------------------------ config
def _url(api: object, keys: tuple[str, ...], schemes: tuple[str, ...]) -> str | None:
    """The first URL under ``keys`` (then any) of ccxt's ``urls.api`` tree with one of ``schemes``, as
    ``scheme://host`` (REST) or whole (WebSocket)."""
    found: list[tuple[str, str]] = []

    def walk(node: object, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, str) and urlsplit(node).scheme in schemes:
            found.append((key, node))

    walk(api, "")
    for want in keys:
        for key, url in found:
            if key == want:
                return url
    return found[0][1] if found else None


def exchange_stanza(ccxt_id: str, markets: list[str], venue: str, info: dict) -> dict:
    """The ``exchanges.yaml`` stanza: library, ccxt id, live endpoints per market, rate limits."""
    per_minute = max(1, int(60_000 / info["rate_limit_ms"]))
    out_markets = {}
    for m in markets:
        rest = _url(info["urls"], REST_KEYS[m], ("https",))
        if rest is None:
            raise OnboardFailed(f"{ccxt_id}: ccxt lists no https REST URL for {m}")
        parts = urlsplit(rest)
        live = {"rest_url": f"{parts.scheme}://{parts.netloc}"}
        ws = _url(info["urls"].get("ws", {}) if isinstance(info["urls"], dict) else {}, WS_KEYS[m], ("wss",))
        if ws:
            live["ws_url"] = ws
        out_markets[m] = {"live": live}
    budget = {"spot_weight_per_minute": per_minute, "futures_weight_per_minute": per_minute,
              "orders_per_10s": 50, "orders_per_day": 100000, "ws_connections": 5}  # fmt: skip
    stanza = {"library": "ccxt", "ccxt_id": ccxt_id, "venue": venue, "markets": out_markets,
              "rate_limits": {"default": budget}}  # fmt: skip
    if venue == "local" and ccxt_id not in BINANCE_WIRE_CCXT_IDS:
        stanza["local_ccxt_id"] = "binance"  # the local exchange speaks Binance's wire only
    ExchangeConfig.model_validate(stanza)
    return stanza


def accounts_stanza(exchange: str, accounts: list[str], markets: list[str]) -> dict:
    """The ``accounts.yaml`` stanza: the first account main, the others its sub-accounts."""
    out = {}
    for i, name in enumerate(accounts):
        a = {"type": "main" if i == 0 else "sub", "api_key_vault_path": f"{exchange}_{name}",
             "spot_enabled": "spot" in markets, "futures_enabled": "usdm" in markets}  # fmt: skip
        if i:
            a["parent"] = accounts[0]
        AccountConfig.model_validate(a)
        out[name] = a
    return out


def with_exchange(cfg: Config, exchange: str, ex_stanza: dict, acct_stanza: dict) -> Config:
    """``cfg`` with the new exchange and its accounts, checked like ``oms config check`` checks the files."""
    exchanges = ExchangesFile.model_validate(
        {**cfg.exchanges.model_dump(mode="json"),
         "exchanges": {**cfg.exchanges.model_dump(mode="json")["exchanges"], exchange: ex_stanza}}
    )  # fmt: skip
    accounts = {ex: {n: a.model_dump(mode="json") for n, a in accts.items()} for ex, accts in cfg.accounts.items()}
    accounts[exchange] = acct_stanza
    af = AccountsFile.model_validate({"accounts": accounts, "account_routing": cfg.routing.model_dump(mode="json")})
    return dataclasses.replace(cfg, exchanges=exchanges, accounts=af.accounts)


# ------------------------------------------------------------------------------------------------ tasks
@task(name="load-markets", cache_policy=NO_CACHE, persist_result=False)
async def load_markets(factory: VenueFactory, exchange: str, market: str) -> dict[str, str]:
    provider = await factory.instruments(exchange, market)
    symbols = {}
    for symbol, inst in (await provider.load()).items():
        if inst.trading:
            symbols[symbol] = provider.to_venue(symbol)
    if not symbols:
        raise OnboardFailed(f"{exchange} {market}: no trading market was loaded")
    return dict(sorted(symbols.items()))


@task(name="create-vault-paths", cache_policy=NO_CACHE, persist_result=False)
def create_vault_paths(store: VaultKeyStore, cfg: Config, exchange: str, local: bool, onboarded: str) -> list[dict]:
    """Each account's key path in Vault; on the local venue, accounts opened there with their keys stored."""
    rows = []
    token = local_venue.admin_token(cfg.data_dir())
    base = cfg.exchanges.local_exchange.base_url
    venue_ids: dict[str, str] = {}
    for name, acct in cfg.accounts[exchange].items():
        for market in acct.markets():
            meta = {"exchange": exchange, "account": name, "market": market, "onboarded": onboarded}
            where = store.ensure_path(exchange, market, name, meta)  # type: ignore[arg-type]
            try:
                creds = store.refresh(exchange, market, name)  # type: ignore[arg-type]
                state = f"key {creds.fingerprint} v{creds.version}"
            except KeyNotFound:
                creds = None
                state = "no key yet"
            if creds is None and local:
                vid = venue_ids.get(name)
                if vid is None:
                    body = {"parentId": venue_ids[acct.parent]} if acct.parent else {}
                    vid = venue_ids[name] = local_venue.admin_call(base, "POST", "/admin/v1/accounts", body, token)[
                        "accountId"
                    ]  # type: ignore[index]
                    for wallet in ("SPOT", "FUTURES"):
                        fund = {"asset": "USDT", "amount": TEST_FUNDS, "wallet": wallet}
                        local_venue.admin_call(base, "POST", f"/admin/v1/accounts/{vid}/fund", fund, token)
                made = local_venue.create_key(base, vid, ["SPOT", "FUTURES", "TRANSFER"],
                                              f"onboarding of {exchange}/{name}", token)  # fmt: skip
                creds = store.put(exchange, market, name, made["apiKey"], made["secret"], ("spot", "futures"),  # type: ignore[arg-type]
                                  venue_account=vid)  # fmt: skip
                state = f"local test account {vid}: key {creds.fingerprint} v{creds.version} stored"
            rows.append({"account": name, "market": market, "path": where, "key": state})
    return rows


def _round_down(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


@task(name="smoke-test", cache_policy=NO_CACHE, persist_result=False)
async def smoke_test(factory: VenueFactory, exchange: str, account: str, market: str, symbol: str | None) -> dict:
    """Balances, a minimal limit buy 3% under the best bid, and its cancellation, on one account and market."""
    steps: list[str] = []
    clients = await factory.account_clients(exchange, account, market)
    balances = await clients.execution.balances()
    steps.append(f"balances: {len(balances)} asset(s) ({', '.join(sorted(b.asset for b in balances)) or 'none'})")
    instruments = await factory.instruments(exchange, market)
    loaded = await instruments.load()
    default = "BTC/USDT" if market == "spot" else "BTC/USDT:USDT"
    chosen = symbol or (default if default in loaded else next(s for s, i in loaded.items() if i.trading))
    spec = instruments.instrument(chosen).spec
    md = await factory.market_data(exchange, market)
    book = await md.book_snapshot(chosen, limit=5)
    if not (book.bids or book.asks):
        raise OnboardFailed(f"smoke test on {exchange} {market}: the {chosen} book is empty, nothing to price from")
    tick, step = Decimal(spec.tick_size), Decimal(spec.step_size)
    reference = Decimal(book.bids[0][0]) if book.bids else Decimal(book.asks[0][0]) * Decimal("0.99")
    price = _round_down(reference * Decimal("0.97"), tick)
    notional = max(Decimal(spec.min_notional), Decimal(5)) * Decimal("1.2")
    qty = max(Decimal(spec.min_qty), Decimal(math.ceil(notional / price / step)) * step)
    cmd = PlaceOrder(account=f"{exchange}/{account}", symbol=chosen, side=Side.BUY, order_type=OrderType.LIMIT,
                     qty=format(qty.normalize(), "f"), price=format(price.normalize(), "f"),
                     time_in_force=TimeInForce.GTC, intent=f"onboard-smoke-{time.time_ns()}")  # fmt: skip
    cmd = cmd.with_client_order_id()
    placed = await clients.execution.place(cmd)
    steps.append(f"placed {cmd.client_order_id}: buy {cmd.qty} {chosen} at {cmd.price}, {placed.status.value}")
    cancel = CancelOrder(account=cmd.account, symbol=chosen, client_order_id=cmd.client_order_id or "")
    done = await clients.execution.cancel(cancel)
    if done.kind is not OrderEventKind.CANCELED:
        raise OnboardFailed(f"smoke test on {exchange} {market}: cancel of {cmd.client_order_id} gave {done.kind}")
    steps.append(f"canceled {cmd.client_order_id}: {done.status.value}")
    return {"market": market, "symbol": chosen, "steps": steps, "ok": True}


# ------------------------------------------------------------------------------------------------ report
def _write_file(path: Path, doc: dict, header: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=110))
    tmp.replace(path)


async def _artifact(exchange: str, lines: list[str]) -> None:
    key = f"onboard-{exchange}".replace("_", "-").lower()
    await acreate_markdown_artifact("\n".join(lines), key=key, description=f"onboarding of {exchange}")


@flow(name="onboard-exchange", persist_result=False, log_prints=False)
async def onboard_exchange(
    ccxt_id: str,
    markets: list[Literal["spot", "usdm"]] | None = None,
    accounts: list[str] | None = None,
    venue: Literal["local", "live"] = "local",
    smoke_symbol: str | None = None,
    config_dir: str | None = None,
    out_dir: str | None = None,
    vault_component: str = "admin",
    retries: int = 2,
) -> dict:
    """Onboard the ccxt exchange ``ccxt_id`` (see the module docstring).

    ``markets``: ``spot`` and/or ``usdm`` (default both); ``accounts``: the account names, the first one main
    (default ``[main]``); ``venue``: ``local`` loads markets from and smoke-tests on the local exchange,
    ``live`` on the exchange itself; ``smoke_symbol``: the smoke test's symbol (default BTC/USDT or the first);
    ``out_dir``: where the reviewable file goes (default ``data/onboarding``); ``vault_component``: the AppRole
    that writes the key paths (``admin``). Returns the file, symbol counts, paths and smoke results; raises
    ``OnboardRefused`` naming what is missing when the exchange cannot serve the platform.
    """
    install_redaction()
    logger = get_run_logger()
    markets = list(markets or ["spot", "usdm"])
    accounts = list(accounts or ["main"])
    cfg = load_config(config_dir)
    onboarded = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [f"# Onboarding of {ccxt_id} ({', '.join(markets)}, venue {venue})", ""]
    try:
        info = check_capabilities(ccxt_id, markets)
    except OnboardRefused as exc:
        await _artifact(ccxt_id, [*lines, f"**Refused**: {exc}"])
        raise
    lines += [f"ccxt {info['ccxt_version']}: every capability the platform needs is native.", ""]
    ex_stanza = exchange_stanza(ccxt_id, markets, venue, info)
    acct_stanza = accounts_stanza(ccxt_id, accounts, markets)
    cfg2 = with_exchange(cfg, ccxt_id, ex_stanza, acct_stanza)
    store = open_store(cfg2, vault_component, cache=False)
    factory = VenueFactory(cfg2, store)
    retry = {"retries": retries, "retry_delay_seconds": _backoff(retries)}
    try:
        symbols = {m: await load_markets.with_options(**retry)(factory, ccxt_id, m) for m in markets}
        paths = create_vault_paths.with_options(**retry)(store, cfg2, ccxt_id, venue == "local", onboarded)
        smoke = []
        for m in markets:
            try:
                store.refresh(ccxt_id, m, accounts[0])  # type: ignore[arg-type]
            except KeyNotFound:
                smoke.append({"market": m, "ok": False, "steps": [f"no key stored for {ccxt_id}/{accounts[0]}"]})
                continue
            smoke.append(await smoke_test.with_options(**retry)(factory, ccxt_id, accounts[0], m, smoke_symbol))
    finally:
        await factory.close()
    ready = all(s["ok"] for s in smoke)
    doc = {"exchanges": {ccxt_id: ex_stanza}, "accounts": {ccxt_id: acct_stanza}, "symbols": symbols,
           "capabilities": info["has"], "vault_paths": paths, "smoke_test": smoke, "ready": ready}  # fmt: skip
    out = Path(out_dir) if out_dir else cfg.data_dir() / "onboarding"
    path = out / f"{ccxt_id}.yaml"
    header = (f"# {ccxt_id} onboarded {onboarded} by the onboard-exchange flow (ccxt {info['ccxt_version']}).\n"
              "# Review, then merge `exchanges:` into configs/exchanges.yaml and `accounts:` into\n"
              "# configs/accounts.yaml, re-run `oms keys init` so the AppRole policies list the new paths,\n"
              "# and run `oms config check`.\n")  # fmt: skip
    _write_file(path, doc, header)
    lines += ["| market | symbols | smoke test |", "|---|---|---|"]
    lines += [f"| {s['market']} | {len(symbols[s['market']])} | {'; '.join(s['steps'])} |" for s in smoke]
    lines += ["", "Vault paths:", "", *[f"- `{p['path']}`: {p['key']}" for p in paths], "",
              f"Config file: `{path}`; {'ready' if ready else 'NOT ready: store the keys and run again'}."]  # fmt: skip
    await _artifact(ccxt_id, lines)
    logger.info("onboarded %s: %s (%s)", ccxt_id, path, "ready" if ready else "not ready")
    return {"file": str(path), "ready": ready, "symbols": {m: len(s) for m, s in symbols.items()},
            "vault_paths": [p["path"] for p in paths], "smoke_test": smoke}  # fmt: skip
