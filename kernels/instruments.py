"""Instruments for the kernels: the model's one implementation (``oms.model.instrument``), re-exported.

The exact decimal-string <-> int64 conversion lives in ``oms.model`` so that venues, the daemon and the
kernels share it. An ``Instrument``'s ``kind`` and ``status`` are the kernel codes of ``kernels.codes``
(``SPOT``/``PERP``, ``INSTRUMENT_TRADING``/``INSTRUMENT_HALTED``), which ``KernelState.set_instrument`` stores.
"""

from __future__ import annotations

from oms.model.instrument import Instrument, InstrumentSpec
from oms.model.units import MONEY_UNIT, from_units, money_from_units, money_to_units, round_to_units, to_units

__all__ = [
    "MONEY_UNIT",
    "Instrument",
    "InstrumentSpec",
    "from_units",
    "money_from_units",
    "money_to_units",
    "round_to_units",
    "to_units",
]
