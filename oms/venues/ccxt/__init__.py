"""The ccxt connector (registers ``CcxtConnector`` for ``library: ccxt``); see ``connector``."""

from oms.venues.ccxt.connector import CcxtConnector

__all__ = ["CcxtConnector"]
