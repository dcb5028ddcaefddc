"""The accounts' own commission rates, fetched from the venue on a timer: the daemon's fee input.

``FeeRates.refresh()`` asks every connected account, on each market it trades, for its maker/taker commission on
every instrument of that market the daemon streams (``ExecutionClient.commission``: Binance Spot
``GET /api/v3/account/commission``, USD-M ``GET /fapi/v1/commissionRate``, ccxt ``fetch_trading_fee``) and
keeps them as parts per million by (kernel account, kernel instrument), rounded up. Where the venue does not
report rates (``Capabilities.commission_rates`` off) or the request fails, an account keeps the rates it last
fetched, else takes the venue metadata's base tier (``VenueMetadata.fee()``), and the reason is logged once per
account, symbol and reason. ``run()`` refreshes every ``interval_s`` (the venue changes an account's tier at
most daily). Reads (``taker_ppm``, ``maker_ppm``) are a dict lookup: the budget sizing of strategies' QUOTE_QTY
intents (``stream.strategies``) and, for a router, the routing kernel's ``fees_ppm`` input.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from decimal import Decimal

from oms.model import InstrumentId
from oms.venues.errors import Unsupported, VenueError
from oms.venues.metadata import CommissionRates
from stream.instruments import InstrumentTable

log = logging.getLogger("stream.fees")

DEFAULT_TAKER_PPM = 1_000  # Binance Spot's base rate (0.1%), when nothing at all is known


class FeeRates:
    def __init__(self, sessions: Mapping[str, object], instruments: InstrumentTable, interval_s: float = 3600.0):
        self.sessions = sessions  # account name -> stream.accounts.AccountSession
        self.instruments = instruments
        self.interval_s = interval_s
        self.rates: dict[tuple[str, str], CommissionRates] = {}  # (account, symbol) -> rates, venue or metadata
        self._ppm: dict[tuple[int, int], tuple[int, int]] = {}  # (account number, instrument) -> (maker, taker)
        self._said: set[tuple[str, str, str]] = set()
        self.fetched = 0
        self.fallbacks = 0

    def taker_ppm(self, a: int, i: int, default: int = DEFAULT_TAKER_PPM) -> int:
        got = self._ppm.get((a, i))
        return got[1] if got is not None else default

    def maker_ppm(self, a: int, i: int, default: int = DEFAULT_TAKER_PPM) -> int:
        got = self._ppm.get((a, i))
        return got[0] if got is not None else default

    async def refresh(self) -> int:
        """One pass over every connected account and market; returns how many rates came from the venue."""
        fetched = 0
        for name, session in list(self.sessions.items()):
            if not getattr(session, "trading", False):
                continue
            exchange = session.account.exchange
            for market, link in list(session.links.items()):
                execution = link.clients.execution
                for symbol, i in self.instruments.numbers(exchange):
                    if InstrumentId.parse(symbol).market is not market:
                        continue
                    rates = await self._one(name, symbol, execution)
                    if rates is None:
                        continue
                    fetched += rates.source == "venue"
                    self.rates[(name, symbol)] = rates
                    self._ppm[(session.number, i)] = (rates.maker_ppm, rates.taker_ppm)
        self.fetched += fetched
        return fetched

    async def _one(self, name: str, symbol: str, execution) -> CommissionRates | None:
        try:
            if not execution.capabilities.commission_rates:
                raise Unsupported("the venue does not report commission rates")
            return await execution.commission(symbol)
        except VenueError as exc:
            reason = str(exc)
        known = self.rates.get((name, symbol))
        if known is not None and known.source == "venue":
            self._say(name, symbol, f"{reason}; keeping the rates fetched before ({known.maker}/{known.taker})")
            return None
        tier = execution.metadata.fee()
        if tier is None:
            self._say(name, symbol, f"{reason}; the venue metadata has no fee tier either: {DEFAULT_TAKER_PPM} ppm")
            return None
        self.fallbacks += 1
        self._say(name, symbol, f"{reason}; using the metadata's tier {tier.tier} ({tier.maker}/{tier.taker})")
        return CommissionRates(symbol=symbol, maker=_plain(tier.maker), taker=_plain(tier.taker), source="metadata")

    def _say(self, name: str, symbol: str, reason: str) -> None:
        key = (name, symbol, reason)
        if key not in self._said:
            self._said.add(key)
            log.warning("account %s %s: commission rates not fetched: %s", name, symbol, reason)

    async def run(self) -> None:
        """Refresh now and then every ``interval_s``; a failing pass is logged and the last rates stay."""
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("commission rates refresh failed; the last rates stay")
            await asyncio.sleep(self.interval_s)


def _plain(rate: str) -> str:
    d = Decimal(rate)
    return "0" if d == 0 else format(d.normalize(), "f")
