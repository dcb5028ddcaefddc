"""Settlement of one fill for one side: spot moves the paid asset out of the order's lock, credits the
received asset less the commission (charged in it) and pays the commission to the fee account; futures
update the position, realise PnL into the USDT futures wallet and charge the commission in USDT.
"""

from __future__ import annotations

from .accounts import Account
from .fees import PPM, fee_of
from .futures import apply_fill, initial_margin
from .markets import SymbolSpec
from .reservations import Reservations
from .types import (
    BUY,
    WALLET_FUTURES,
    WALLET_SPOT,
    Balance,
    Fill,
    Order,
)


class Settlement(Reservations):
    """Both settlements of a fill."""

    def _settle_spot(
        self,
        acc: Account,
        order: Order,
        price: int,
        lots: int,
        quote: int,
        tid: int,
        maker: bool,
        now: int,
        spec: SymbolSpec,
    ) -> Fill:
        fees = self.fees
        ppm = fees.spot_maker_ppm if maker else fees.spot_taker_ppm
        base_units = lots * spec.qty_unit
        wallet = acc.spot
        if order.side == BUY:
            pay_asset, fasset, pay_amount = spec.quote_asset, spec.base_asset, quote
            fee = (base_units * ppm + PPM // 2) // PPM  # fee_of
            gain = base_units - fee
        else:
            pay_asset, fasset, pay_amount = spec.base_asset, spec.quote_asset, base_units
            fee = (quote * ppm + PPM // 2) // PPM  # fee_of
            gain = quote - fee
        pay = wallet.get(pay_asset)
        if pay is None:
            pay = wallet[pay_asset] = Balance(pay_asset)
        pay.locked -= pay_amount
        order.locked -= pay_amount
        get = wallet.get(fasset)
        if get is None:
            get = wallet[fasset] = Balance(fasset)
        get.free += gain
        if fee:
            fee_wallet = self.fee_account.spot
            fb = fee_wallet.get(fasset)
            if fb is None:
                fb = fee_wallet[fasset] = Balance(fasset)
            fb.free += fee
        order.executed_qty += lots
        order.cum_quote += quote
        order.commission += fee
        order.update_ns = now
        account_id = acc.account_id
        fill = Fill(
            account_id,
            order.market,
            order.symbol,
            tid,
            order.order_id,
            order.client_order_id,
            order.side,
            price,
            lots,
            quote,
            fee,
            fasset,
            maker,
            now,
        )
        fk = (account_id, order.market, order.symbol)
        lst = self.fills.get(fk)
        if lst is None:
            lst = self.fills[fk] = []
        lst.append(fill)
        if self.em.active:
            self.em.touch(account_id, WALLET_SPOT, pay_asset)
            self.em.touch(account_id, WALLET_SPOT, fasset)
        return fill

    def _settle_futures(
        self,
        acc: Account,
        order: Order,
        price: int,
        lots: int,
        quote: int,
        tid: int,
        maker: bool,
        now: int,
        spec: SymbolSpec,
    ) -> Fill:
        ppm = self.fees.usdm_maker_ppm if maker else self.fees.usdm_taker_ppm
        fee = fee_of(quote, ppm)
        pos = acc.position(order.symbol, order.position_side)
        before = abs(pos.qty)
        pnl, closed = apply_fill(pos, order.side, lots, price, spec.notional_unit)
        pos.update_ns = now
        if acc.margin_type_of(order.symbol) == "ISOLATED":
            if closed and before:
                pos.isolated_margin -= pos.isolated_margin * closed // before
            opened = lots - closed
            if opened:
                pos.isolated_margin += initial_margin(
                    price * opened * spec.notional_unit, acc.leverage_of(order.symbol)
                )
            if pos.qty == 0:
                pos.isolated_margin = 0
        usdt = acc.bal(acc.futures, spec.margin_asset)
        usdt.free += pnl - fee
        if fee:
            self.fee_account.bal(self.fee_account.futures, spec.margin_asset).free += fee
        if order.margin:
            rem = order.orig_qty - order.executed_qty
            rel = order.margin if lots >= rem else order.margin * lots // rem
            order.margin -= rel
            acc.order_margin -= rel
        order.executed_qty += lots
        order.cum_quote += quote
        order.commission += fee
        order.realized_pnl += pnl
        order.update_ns = now
        fill = Fill(
            acc.account_id,
            order.market,
            order.symbol,
            tid,
            order.order_id,
            order.client_order_id,
            order.side,
            price,
            lots,
            quote,
            fee,
            spec.margin_asset,
            maker,
            now,
            pnl,
            order.position_side,
        )
        fk = (acc.account_id, order.market, order.symbol)
        lst = self.fills.get(fk)
        if lst is None:
            lst = self.fills[fk] = []
        lst.append(fill)
        if self.em.active:
            self.em.touch(
                acc.account_id, WALLET_FUTURES, spec.margin_asset, (order.symbol, order.position_side), delta=pnl - fee
            )
        return fill
