"""Commission rates (parts per million) and the commission of an amount, rounded half-up to 1e-8."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PPM: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Fee rates in parts per million: spot 0.1%/0.1%, futures maker 0.02% / taker 0.05%."""

    spot_maker_ppm: int = 1000
    spot_taker_ppm: int = 1000
    usdm_maker_ppm: int = 200
    usdm_taker_ppm: int = 500


def fee_of(amount: int, ppm: int) -> int:
    """Commission on ``amount`` (1e-8 units), rounded half-up."""
    return (amount * ppm + PPM // 2) // PPM
