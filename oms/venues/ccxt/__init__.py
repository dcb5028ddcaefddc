"""The ccxt connector: every exchange ccxt supports (and Binance as a second path), through ccxt's unified
async REST API and ccxt.pro streams, answered in ``oms.model`` types."""
