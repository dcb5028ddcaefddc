"""Numba kernels: pure functions over int64 NumPy arrays, no I/O (see kernels/README.md).

state        struct-of-arrays blocks (instruments, limits, accounts, positions, global)
instruments  decimal strings <-> int64 units, exactly, at the boundary
fixed        exact int64 arithmetic (saturating products, 128-bit multiply-divide)
codes        sides, order types, states and risk reason codes with readable messages
risk         pre-trade risk check, one order or a batch; reservations of open orders
risk_limits  configs/risk.yaml (via oms.config) -> limit arrays
positions    fills, marks, funding, transfers; PnL and equity per account and aggregated
book         L2 books: snapshot, sequenced diffs, depth, fill price, consolidated book
execution    parent -> child splitting: fixed, percent, liquidity, TWAP, VWAP, iceberg
routing      venue/account selection and cross-venue arbitrage
stats        VaR, volatility, drawdown, position sizing, stop levels
affinity     pin the process or a thread to configured CPU cores
warmup       compile the lazily compiled kernels before trading
reference/   plain-Python references the tests compare every kernel against
"""
