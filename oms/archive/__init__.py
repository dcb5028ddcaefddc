"""The project's archives: file layouts and importers (market data in Binance's public-archive layout)."""
