"""USD-M reads over ccxt's unified API: each symbol's leverage and margin type, and the funding income.

* ``symbol_settings(ex)``: ccxt's ``fetchLeverages`` (Binance: ``GET /fapi/v1/symbolConfig``, one call for every
  symbol) as ``AccountSettings`` rows of leverage and margin type, the shape the daemon's settings enforcement
  (``stream.futures_settings``) reads before it changes anything: an account already set is left alone instead
  of being sent its targets at every start. A symbol whose long and short leverage differ (hedge mode on a
  venue that sets them apart) reports the lower one, so a target of either differs and is re-sent.
* ``funding_payments(ex, since_ns, until_ns)``: ccxt's ``fetchFundingHistory`` (Binance: ``GET
  /fapi/v1/income`` with ``incomeType=FUNDING_FEE``) paged forward by time, as the archive's ``Funding``
  records, oldest first, one per payment; the amount is the venue's own decimal string (ccxt's ``amount`` is a
  float). Only for venues whose ccxt class has both calls (``has``); elsewhere: ``Unsupported`` / no rows.
"""

from __future__ import annotations

from typing import Any

from oms.archive.records import Funding
from oms.model import AccountSettings, MarginType, Market
from oms.venues.errors import Unsupported

MS = 1_000_000
FUNDING_PAGE = 1000  # rows per fetchFundingHistory call (Binance's income maximum)
_MARGIN = {"cross": MarginType.CROSS, "isolated": MarginType.ISOLATED}


def _has(ex, name: str) -> bool:
    return getattr(ex.exchange, "has", {}).get(name) is True


async def symbol_settings(ex: Any, symbol: str | None = None) -> list[AccountSettings]:
    """The leverage and margin type of every USD-M symbol (or one) of ``ex`` (a ``CcxtExecution``)."""
    if ex.market is not Market.USDM:
        raise Unsupported("this is a USD-M futures setting", account=ex.account, action="read symbol settings")
    if not _has(ex, "fetchLeverages"):
        raise Unsupported(f"{ex.exchange.id} has no fetchLeverages in ccxt", account=ex.account,
                          action="read symbol settings")  # fmt: skip
    symbols = [symbol] if symbol else None
    rows = await ex._call("read symbol settings", None, ex.exchange.fetch_leverages, symbols, {},
                          state_changing=False, idempotent=True)  # fmt: skip
    out = []
    for unified, row in (rows or {}).items():
        if symbol and unified != symbol:
            continue
        levs = [v for v in (row.get("longLeverage"), row.get("shortLeverage")) if v]
        info = row.get("info") or {}
        cap = info.get("maxNotionalValue") if isinstance(info, dict) else None
        out.append(
            AccountSettings(
                account=ex.account,
                symbol=unified,
                leverage=int(min(levs)) if levs else None,
                margin_type=_MARGIN.get(str(row.get("marginMode") or "").lower()),
                max_notional=str(cap) if cap is not None else None,
            )
        )
    return out


async def funding_payments(ex: Any, since_ns: int, until_ns: int | None = None) -> list[Funding]:
    """Funding fees at or after ``since_ns`` (and up to ``until_ns``), oldest first; symbols the account does not
    trade on this market (not in its instruments) are left out."""
    if ex.market is not Market.USDM or not _has(ex, "fetchFundingHistory"):
        return []
    params: dict[str, Any] = {} if until_ns is None else {"until": until_ns // MS}
    since = max(0, since_ns // MS)
    seen: set[tuple[str, str, int]] = set()
    out: list[Funding] = []
    while True:
        rows = await ex._call("read funding payments", None, ex.exchange.fetch_funding_history, None, since,
                              FUNDING_PAGE, dict(params), state_changing=False, idempotent=True)  # fmt: skip
        rows = rows or []
        new = 0
        for r in rows:
            info = r.get("info") or {}
            symbol, t = str(r.get("symbol") or ""), int(r.get("timestamp") or 0)
            amount = str(info.get("income", "")) if isinstance(info, dict) else ""
            venue_id = str(r.get("id") or "")
            key = (symbol, venue_id, t)
            if key in seen or not amount or not _known(ex, symbol):
                seen.add(key)
                continue
            seen.add(key)
            new += 1
            out.append(Funding(account=ex.account, symbol=symbol, asset=str(r.get("code") or "USDT"), amount=amount,
                               venue_id=venue_id, event_ns=t * MS))  # fmt: skip
        last = max((int(r.get("timestamp") or 0) for r in rows), default=since)
        # a full page: the next starts at its last time (rows sharing that millisecond are seen once)
        if len(rows) < FUNDING_PAGE or (not new and last <= since):
            break
        since = last
    out.sort(key=lambda f: (f.event_ns, f.symbol))
    return out


def _known(ex: Any, symbol: str) -> bool:
    ins = ex.instruments.find(symbol)
    return ins is not None and ins.market is Market.USDM
