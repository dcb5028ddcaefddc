"""The venue interface's shared parts: error sentences, capabilities and metadata, the connector registry."""

from __future__ import annotations

import pytest

from oms.model import Market, OrderType
from oms.venues import (
    Capabilities,
    ClockSkew,
    Connector,
    EndpointWeight,
    ExecutionClient,
    FeeTier,
    InstrumentProvider,
    MarketDataClient,
    NetworkError,
    OrderNotFound,
    RateLimited,
    Rejected,
    UnknownOutcome,
    UserDataStream,
    VenueError,
    VenueMetadata,
    registry,
)


def test_error_sentences_name_action_order_and_account():
    e = Rejected(-2011, "Unknown order sent.", account="binance/sub_mm", action="cancel", order="X")
    assert str(e) == "failed to cancel order X for binance/sub_mm: venue rejected (-2011): Unknown order sent."
    assert (e.code, e.venue_message, e.account, e.order) == (-2011, "Unknown order sent.", "binance/sub_mm", "X")
    r = RateLimited("too many requests", retry_after_s=7, status=418, account="binance/main", action="place")
    assert str(r) == "failed to place for binance/main: too many requests (HTTP 418, retry after 7 s)"
    assert r.retry_after_s == 7.0 and r.status == 418
    u = UnknownOutcome("no answer in 5 s over ws-api", account="binance/main", action="place", order="oms-1")
    assert str(u).startswith("failed to place order oms-1 for binance/main: no answer")
    assert str(NetworkError("connection refused")) == "failed to call: connection refused"
    for cls in (OrderNotFound, ClockSkew):
        assert issubclass(cls, Rejected) and issubclass(cls, VenueError)
    assert isinstance(ClockSkew(-1021, "Timestamp outside recvWindow"), Rejected)


def test_capabilities_and_metadata_are_data():
    caps = Capabilities(
        market=Market.USDM, order_types=frozenset(OrderType), amend=True, batch_orders=True, max_batch=5
    )
    meta = VenueMetadata(
        exchange="binance",
        market=Market.USDM,
        capabilities=caps,
        weights={"GET /fapi/v1/openOrders": EndpointWeight(40), "POST /fapi/v1/order": EndpointWeight(0, orders=True)},
        fee_tiers=(
            FeeTier(tier=0, maker="0.0002", taker="0.0005"),
            FeeTier(tier=1, min_volume="15000000", maker="0.00016", taker="0.0004"),
        ),
    )
    assert caps.supports(OrderType.TRAILING_STOP_MARKET)
    assert not Capabilities(market=Market.SPOT).supports(OrderType.STOP_MARKET)
    assert meta.weight("GET /fapi/v1/openOrders").weight == 40 and meta.weight("GET /other").weight == 1
    assert meta.weight("POST /fapi/v1/order").orders
    assert meta.fee("0").tier == 0 and meta.fee("20000000").tier == 1


class _Dummy(Connector):
    library = "dummy-lib"

    def capabilities(self, exchange, market):
        return Capabilities(market=market)

    def metadata(self, exchange, market):
        return VenueMetadata(exchange=exchange, market=market, capabilities=self.capabilities(exchange, market))

    def instrument_provider(self, ctx):
        raise NotImplementedError

    market_data_client = execution_client = user_data_stream = instrument_provider


def test_registry():
    try:
        registry.register(_Dummy)
        registry.register(_Dummy)  # the same class again is fine
        assert isinstance(registry.connector_for("dummy-lib"), _Dummy)
        other = type("Other", (_Dummy,), {})
        with pytest.raises(ValueError, match="already has the connector"):
            registry.register(other)
        registry.register(other, replace=True)
        assert type(registry.connector_for("dummy-lib")) is other
        with pytest.raises(KeyError, match="no connector registered for library 'nope'"):
            registry.connector_for("nope")
        with pytest.raises(TypeError, match="not a subclass"):
            registry.register(int)
        with pytest.raises(TypeError, match="must set the class attribute `library`"):
            registry.register(type("NoLib", (_Dummy,), {"library": ""}))
    finally:
        registry.unregister("dummy-lib")
    assert "dummy-lib" not in registry.registered()


def test_protocols_are_runtime_checkable():
    for proto in (InstrumentProvider, MarketDataClient, ExecutionClient, UserDataStream):
        assert not isinstance(object(), proto)
