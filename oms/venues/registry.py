"""Connector classes by client library: a connector module registers its class, the factory looks it up.

    from oms.venues.registry import register

    @register
    class BinanceConnector(Connector):
        library = "python-binance"
        ...

The factory imports the modules named in ``CONNECTOR_MODULES`` (so registering needs no edit elsewhere
than that list) and asks ``connector_for(library)`` for an instance. A second class for the same library
is an error unless ``replace=True`` (tests).
"""

from __future__ import annotations

import importlib
import logging

from oms.venues.interface import Connector

log = logging.getLogger(__name__)

# Modules that register connectors when imported; one that is not there (yet) is skipped with a log line.
CONNECTOR_MODULES = ("oms.venues.binance", "oms.venues.ccxt")

_REGISTRY: dict[str, type[Connector]] = {}


def register(cls: type[Connector] | None = None, *, replace: bool = False):
    """Class decorator: make ``cls`` the connector of ``cls.library``."""

    def add(c: type[Connector]) -> type[Connector]:
        if not (isinstance(c, type) and issubclass(c, Connector)):
            raise TypeError(f"{c!r} is not a subclass of oms.venues.Connector")
        library = getattr(c, "library", None)
        if not isinstance(library, str) or not library:
            raise TypeError(f"{c.__name__} must set the class attribute `library` (e.g. 'python-binance')")
        old = _REGISTRY.get(library)
        if old is not None and old is not c and not replace:
            raise ValueError(f"library {library!r} already has the connector {old.__qualname__}; not {c.__qualname__}")
        _REGISTRY[library] = c
        return c

    return add(cls) if cls is not None else add


def unregister(library: str) -> None:
    _REGISTRY.pop(library, None)


def load_connectors() -> dict[str, type[Connector]]:
    """Import every module of ``CONNECTOR_MODULES`` that exists; the registry afterwards."""
    for name in CONNECTOR_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            log.debug("connector module %s is not installed", name)
    return dict(_REGISTRY)


def connector_for(library: str) -> Connector:
    """A new instance of the connector registered for ``library``; KeyError naming the known ones."""
    cls = _REGISTRY.get(library) or load_connectors().get(library)
    if cls is None:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"no connector registered for library {library!r} (registered: {known})")
    return cls()


def registered() -> dict[str, type[Connector]]:
    return dict(_REGISTRY)
