"""Prove that a key works before anything depends on it: one signed account read through the library the
exchange is configured with (``configs/exchanges.yaml`` ``library``).

* ``python-binance``: a Binance-signed ``GET /api/v3/account`` (Spot) or ``GET /fapi/v2/balance`` (USD-M)
  (``oms.keys.venue.signed_read``);
* ``ccxt``: ccxt's own ``fetch_balance`` on an instance built by the ccxt connector for the account and
  market (``oms.venues.ccxt.connector.new_session``: the same URLs, options, signing clock and rate-limit
  hooks the daemon trades with), so any ccxt exchange is checked the way it signs.

The rotation flow's ``verify`` step calls ``verify_key`` on the new key; the live preflight calls it on every
key it loads. Failures raise ``VenueError`` naming the account, market and key fingerprint, never the secret.
"""

from __future__ import annotations

import asyncio

import ccxt.async_support as ccxt_async

from oms.keys.provider import Credentials
from oms.keys.venue import VenueError, signed_read
from oms.venues.ccxt.connector import new_session
from oms.venues.factory import VenueFactory


def _what(creds: Credentials, how: str) -> str:
    return f"signed read ({how}) of {creds.exchange}/{creds.account}/{creds.market} with key {creds.fingerprint}"


async def verify_ccxt(factory: VenueFactory, creds: Credentials) -> str:
    """``fetch_balance`` through the ccxt connector's session for ``creds``; what was checked."""
    ctx = factory.context(creds.exchange, creds.account, creds.market, creds)
    what = _what(creds, f"ccxt {ctx.options.get('ccxt_id') or creds.exchange} fetch_balance")
    session = new_session(ctx, private=True)
    try:
        await session.exchange.fetch_balance()
    except ccxt_async.AuthenticationError as exc:
        raise VenueError(f"{what} refused: {type(exc).__name__}: {str(exc)[:200]}") from None
    except ccxt_async.BaseError as exc:
        raise VenueError(f"{what} failed: {type(exc).__name__}: {str(exc)[:200]}") from None
    finally:
        await session.close()
    return what


def verify_key(cfg, creds: Credentials, local_url: str | None = None, timeout_s: float = 30.0) -> str:
    """One signed read with ``creds`` through the exchange's configured library; returns what was checked,
    raises ``VenueError`` if the venue refuses the key. ``cfg`` is the loaded ``oms.config.Config``;
    ``local_url`` overrides the local exchange's address (as the venue factory's)."""
    factory = VenueFactory(cfg, keys=None, local_url=local_url)  # type: ignore[arg-type]  (no key is looked up)
    try:
        library = factory.options(creds.exchange)["library"]
        endpoints = factory.endpoints(creds.exchange, creds.market)
    except KeyError as exc:
        raise VenueError(f"cannot verify the key of {creds.exchange}/{creds.account}/{creds.market}: {exc}") from None
    if library == "ccxt":
        return asyncio.run(asyncio.wait_for(verify_ccxt(factory, creds), timeout_s))
    signed_read(endpoints.rest_url, creds, timeout=timeout_s)
    return _what(creds, f"{library} REST")
