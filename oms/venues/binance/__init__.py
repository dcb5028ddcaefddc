"""Binance (Spot and USD-M futures) on python-binance: importing this registers ``BinanceConnector``."""

from oms.venues.binance.connector import BinanceConnector

__all__ = ["BinanceConnector"]
