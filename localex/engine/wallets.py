"""Accounts, API keys, wallets, admin funding and transfers (main <-> sub, spot <-> futures)."""

from __future__ import annotations

from collections.abc import Iterable

from . import errors as E
from .accounts import Account
from .event_types import BalanceDeltaEvent, TransferEvent
from .markets import ASSET_RE, MAX_AMOUNT_UNITS, parse_amount
from .operation import OperationFrame
from .types import ALL_PERMISSIONS, WALLET_FUTURES, WALLET_SPOT, ApiKey, Balance, Transfer


class Wallets(OperationFrame):
    """Accounts, keys, balances and transfers."""

    # ================================================================================ accounts & keys
    def create_account(
        self, email: str | None = None, *, parent_id: str | None = None, account_id: str | None = None
    ) -> Account:
        """Create a main account (no parent) or a sub-account of ``parent_id``."""
        return self.ledger.create(self.clock(), email=email, parent_id=parent_id, account_id=account_id)

    def account(self, account_id: str) -> Account:
        """The account; ExchangeError(-1000) if unknown."""
        return self.ledger.get(account_id)

    def accounts(self) -> list[Account]:
        """User accounts (internal liquidity and fee accounts excluded), creation order."""
        return [a for a in self.ledger.accounts.values() if not a.internal]

    def sub_accounts(self, parent_id: str) -> list[Account]:
        """Sub-accounts of ``parent_id``."""
        self.ledger.get(parent_id)
        return [a for a in self.ledger.accounts.values() if a.parent_id == parent_id and not a.internal]

    def create_api_key(self, account_id: str, permissions: Iterable[str] = ALL_PERMISSIONS, label: str = "") -> ApiKey:
        """New key for the account with ``permissions`` (SPOT, FUTURES, TRANSFER, WITHDRAW)."""
        return self.ledger.create_key(account_id, frozenset(permissions), label, self.clock())

    def restore_api_key(
        self, account_id: str, api_key: str, secret: str, permissions: Iterable[str], label: str = ""
    ) -> ApiKey:
        """Register a key created by an earlier run (``api_key`` and ``secret``: 64 alphanumerics, unused)."""
        return self.ledger.restore_key(account_id, api_key, secret, frozenset(permissions), label, self.clock())

    def revoke_api_key(self, api_key: str) -> ApiKey:
        """Revoke a key; lookups return None afterwards."""
        return self.ledger.revoke_key(api_key)

    def lookup_api_key(self, api_key: str) -> ApiKey | None:
        """The live key or None (unknown or revoked)."""
        return self.ledger.lookup_key(api_key)

    def api_keys(self, account_id: str) -> list[ApiKey]:
        """All keys (also revoked) of the account."""
        return [k for k in self.ledger.keys.values() if k.account_id == account_id]

    # ================================================================================ wallets
    def fund(self, account_id: str, asset: str, amount: str, wallet: str = WALLET_SPOT) -> Transfer:
        """Admin deposit of ``amount`` (decimal string) into the account's wallet."""
        acc = self.ledger.get(account_id)
        units = parse_amount("amount", amount)
        if not ASSET_RE.match(asset):
            raise E.bad_param("asset", asset)
        held = acc.wallet(wallet).get(asset)  # checked before anything changes: a rejected deposit changes nothing
        if (held.free + held.locked if held else 0) + units > MAX_AMOUNT_UNITS:
            raise E.bad_param("amount", amount)
        self._begin()
        try:
            acc.bal(acc.wallet(wallet), asset).free += units
            key = (wallet, asset)
            self.deposits[key] = self.deposits.get(key, 0) + units
            tr = self._record_transfer(asset, units, "", account_id, "", wallet, "FUND")
            self._notify_balance(acc, wallet, asset, units, "DEPOSIT")
            return tr
        finally:
            self._end()

    def balances(self, account_id: str, wallet: str = WALLET_SPOT) -> list[Balance]:
        """Balances of the wallet (copies), assets sorted."""
        acc = self.ledger.get(account_id)
        w = acc.wallet(wallet)
        return [Balance(a, b.free, b.locked) for a, b in sorted(w.items())]

    def balance(self, account_id: str, asset: str, wallet: str = WALLET_SPOT) -> Balance:
        """One asset's balance (copy; zero if never held)."""
        b = self.ledger.get(account_id).wallet(wallet).get(asset)
        return Balance(asset, b.free, b.locked) if b else Balance(asset)

    def transfer(
        self,
        from_account: str,
        to_account: str,
        asset: str,
        amount: str,
        from_wallet: str = WALLET_SPOT,
        to_wallet: str = WALLET_SPOT,
    ) -> Transfer:
        """Move free funds between accounts and/or wallets. -5002 "Insufficient balance" if short.

        Futures wallet withdrawals are limited to the available balance (margin in use stays).
        """
        src = self.ledger.get(from_account)
        dst = self.ledger.get(to_account)
        units = parse_amount("amount", amount)
        if units <= 0:
            raise E.bad_param("amount", amount)
        if src is dst and from_wallet == to_wallet:
            raise E.ExchangeError(-1130, "Data sent for parameter 'toAccount' is not valid: same wallet.")
        if not ASSET_RE.match(asset):
            raise E.bad_param("asset", asset)
        held = dst.wallet(to_wallet).get(asset)
        if (held.free + held.locked if held else 0) + units > MAX_AMOUNT_UNITS:
            raise E.bad_param("amount", amount)
        self._begin()
        try:
            held = src.wallet(from_wallet).get(asset)  # read only: a refused transfer leaves no empty balance
            limit = held.free if held else 0
            if from_wallet == WALLET_FUTURES and asset == "USDT":
                limit = min(limit, self.matcher.available(src))
            if limit < units:
                raise E.ExchangeError(E.TRANSFER_FAILED, "Insufficient balance")
            sb = src.bal(src.wallet(from_wallet), asset)
            sb.free -= units
            dst.bal(dst.wallet(to_wallet), asset).free += units
            ttype = self._transfer_type(src, dst, from_wallet, to_wallet)
            tr = self._record_transfer(asset, units, from_account, to_account, from_wallet, to_wallet, ttype)
            self._notify_balance(src, from_wallet, asset, -units, "WITHDRAW")
            self._notify_balance(dst, to_wallet, asset, units, "DEPOSIT")
            return tr
        finally:
            self._end()

    @staticmethod
    def _transfer_type(src: Account, dst: Account, fw: str, tw: str) -> str:
        names = {WALLET_SPOT: "MAIN", WALLET_FUTURES: "UMFUTURE"}
        if src is dst:
            return f"{names[fw]}_{names[tw]}"
        if src.is_sub and dst.is_sub:
            return "SUB_TO_SUB"
        if src.is_sub:
            return "SUB_TO_MASTER"
        if dst.is_sub:
            return "MASTER_TO_SUB"
        return "MAIN_TO_MAIN"

    def _record_transfer(self, asset: str, units: int, src: str, dst: str, fw: str, tw: str, ttype: str) -> Transfer:
        tr = Transfer(self._next_tran_id, asset, units, src, dst, fw, tw, self.clock(), ttype)
        self._next_tran_id += 1
        self._transfers.append(tr)
        if self.em.active:
            self.em.emit(TransferEvent(tr))
        return tr

    def _notify_balance(self, acc: Account, wallet: str, asset: str, delta: int, reason: str) -> None:
        if not self.em.active or acc.internal:
            return
        if wallet == WALLET_SPOT:
            self.em.emit(BalanceDeltaEvent(acc.account_id, wallet, asset, delta, self.clock()))
        self.em.touch(acc.account_id, wallet, asset, reason=reason, delta=delta)

    def transfers(
        self, account_id: str | None = None, start_ns: int | None = None, end_ns: int | None = None, limit: int = 500
    ) -> list[Transfer]:
        """Transfer history (oldest first) touching ``account_id`` (or all), within the time range."""
        out = [
            t
            for t in self._transfers
            if (account_id is None or account_id in (t.from_account, t.to_account))
            and (start_ns is None or t.time_ns >= start_ns)
            and (end_ns is None or t.time_ns <= end_ns)
        ]
        return out[-limit:]
