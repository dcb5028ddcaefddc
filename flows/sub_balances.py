"""Sub-account balances read with the main account's key alone (Binance's master-account endpoints), so a
rebalance needs one key rather than one per sub-account.

* a Spot wallet: ``GET /sapi/v4/sub-account/assets?email=`` (Query Sub-account Assets, for the master
  account), each asset's ``free``. The v3 endpoint of the same name answers the same rows with JSON numbers;
  v4 gives decimal strings, so the amounts stay exact, and it is the one python-binance 1.0.37's
  ``get_sub_account_assets`` calls;
* a USD-M wallet: ``GET /sapi/v2/sub-account/futures/account?email=&futuresType=1`` (Get Detail on
  Sub-account's Futures Account V2), the asset's ``maxWithdrawAmount``: what a transfer can take out.

The requests go through python-binance's ``AsyncClient`` built by the Binance connector's own
``build_client`` (the configured URLs, the main account's rate-limit budget fed by every answer's headers),
signed with the main account's key and the exchange's shared server clock. Venues without these endpoints
(a ccxt connector) have no ``MasterBalances``: the rebalance then reads each sub-account with its own key.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from binance.exceptions import BinanceAPIException, BinanceRequestException

from oms.model import Market
from oms.venues.binance.client import build_client, close_client
from oms.venues.binance.config import BinanceSettings
from oms.venues.factory import AccountClients

SPOT_ASSETS = "GET /sapi/v4/sub-account/assets"
FUTURES_ACCOUNT = "GET /sapi/v2/sub-account/futures/account"
USDM_FUTURES = 1  # futuresType: 1 USD-M, 2 COIN-M


class SubBalanceError(RuntimeError):
    """A sub-account's balance could not be read with the main key (the message names the account and why)."""


class MasterBalances:
    """Reads sub-account wallets through the main account's key; ``close`` when done."""

    def __init__(self, main: AccountClients):
        ctx = main.context
        if ctx.credentials is None:
            raise SubBalanceError(f"no key for the main account {ctx.account}")
        self.ctx = ctx
        self.client = build_client(
            ctx.endpoints,
            Market.SPOT,
            BinanceSettings.from_options(ctx.options),
            ctx.credentials.api_key,
            ctx.credentials.secret,
            ctx.limiter.observe_headers,
            ctx.limiter.observe_rate_limits,
        )

    @staticmethod
    def available(main: AccountClients) -> bool:
        """Whether the main account's venue has the master endpoints (the python-binance connector)."""
        return type(main.execution).__module__.startswith("oms.venues.binance.")

    async def _call(self, endpoint: str, method: str, account: str, **params: Any) -> Any:
        await self.ctx.limiter.acquire(endpoint, weight=1)  # SAPI: its own IP budget; counted once here
        self.client.timestamp_offset = self.ctx.clock.server_time_ms() - int(time.time() * 1000)
        try:
            return await getattr(self.client, method)(**params)
        except (BinanceAPIException, BinanceRequestException, OSError, TimeoutError) as exc:
            raise SubBalanceError(
                f"cannot read the balance of {account} with the main key ({endpoint}): {exc}"
            ) from exc

    async def free(self, account: str, email: str, market: Market, asset: str) -> Decimal:
        """What ``account`` (venue id ``email``) holds of ``asset`` free to move, on its ``market`` wallet."""
        if market is Market.SPOT:
            body = await self._call(SPOT_ASSETS, "get_sub_account_assets", account, email=email)
            rows = body.get("balances", []) if isinstance(body, dict) else []
            return next((Decimal(str(r["free"])) for r in rows if r.get("asset") == asset), Decimal(0))
        body = await self._call(FUTURES_ACCOUNT, "get_subaccount_futures_details", account, email=email,
                                futuresType=USDM_FUTURES)  # fmt: skip
        resp = body.get("futureAccountResp", {}) if isinstance(body, dict) else {}
        rows = resp.get("assets", [])
        return next((Decimal(str(r["maxWithdrawAmount"])) for r in rows if r.get("asset") == asset), Decimal(0))

    async def close(self) -> None:
        await close_client(self.client)
