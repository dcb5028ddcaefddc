"""The venue interface and its shared machinery; connectors live in subpackages (binance/, ccxt/).

See ``oms/venues/README.md`` for the layout every adapter follows and ``oms.venues.interface`` for the
contract. Import the facets' protocols, the errors and the metadata from here.
"""

from oms.venues.errors import (
    AuthError,
    ClockSkew,
    NetworkError,
    OrderNotFound,
    RateLimited,
    Rejected,
    UnknownOutcome,
    Unsupported,
    VenueError,
)
from oms.venues.interface import (
    Connector,
    Endpoints,
    ExecutionClient,
    InstrumentProvider,
    MarketDataClient,
    MarketEvent,
    RequestBudget,
    Stream,
    StreamStatus,
    TimeSync,
    UserDataStream,
    UserEvent,
    VenueContext,
)
from oms.venues.metadata import Capabilities, CommissionRates, EndpointWeight, FeeTier, RateLimitRule, VenueMetadata
from oms.venues.registry import connector_for, register

__all__ = [
    "AuthError",
    "Capabilities",
    "CommissionRates",
    "ClockSkew",
    "Connector",
    "EndpointWeight",
    "Endpoints",
    "ExecutionClient",
    "FeeTier",
    "InstrumentProvider",
    "MarketDataClient",
    "MarketEvent",
    "NetworkError",
    "OrderNotFound",
    "RateLimitRule",
    "RateLimited",
    "Rejected",
    "RequestBudget",
    "Stream",
    "StreamStatus",
    "TimeSync",
    "UnknownOutcome",
    "Unsupported",
    "UserDataStream",
    "UserEvent",
    "VenueContext",
    "VenueError",
    "VenueMetadata",
    "connector_for",
    "register",
]
