"""Reference splitters (see kernels/execution.py for the rules)."""

from __future__ import annotations

from fractions import Fraction

MASK = 2**64 - 1
MAX_CHILDREN = 1_000_000


def _lots(total: int, lot: int) -> int:
    if lot <= 0 or total < 0 or total % lot:
        raise ValueError("parent quantity must be a non-negative whole number of lots")
    return total // lot


def merge_small(children: list[int], min_qty: int) -> list[int]:
    """Move every child below min_qty into the largest child (the first one on ties)."""
    out = list(children)
    if out:
        big = out.index(max(out))
        for k, c in enumerate(children):
            if k != big and 0 < c < min_qty:
                out[big] += c
                out[k] = 0
    return out


def allocate(total: int, weights: list[int], lot: int, min_qty: int) -> list[int]:
    n_lots = _lots(total, lot)
    if not weights:
        if n_lots:
            raise ValueError("no weights to allocate over")
        return []
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    if sum(weights) == 0:
        weights = [1] * len(weights)
    exact = [Fraction(n_lots * w, sum(weights)) for w in weights]
    shares = [int(x) for x in exact]  # floor (non-negative)
    by_remainder = sorted(range(len(weights)), key=lambda k: (-(exact[k] - shares[k]), k))
    for k in by_remainder[: n_lots - sum(shares)]:
        shares[k] += 1
    return merge_small([s * lot for s in shares], min_qty)


def min_lots(min_qty: int, lot: int) -> int:
    return max(1, -(-min_qty // lot))


def split_fixed(total: int, chunk: int, lot: int, min_qty: int) -> list[int]:
    _lots(total, lot)
    size = max(min_lots(min_qty, lot) * lot, chunk - chunk % lot)
    if total // size >= MAX_CHILDREN:
        raise ValueError("split would make more than MAX_CHILDREN children")
    children = [size] * (total // size)
    rest = total % size
    if rest:
        if rest < min_qty and children:
            children[-1] += rest
        else:
            children.append(rest)
    return children


def split_percent(total: int, pct_ppm: int, lot: int, min_qty: int) -> list[int]:
    return split_fixed(total, total * pct_ppm // 1_000_000, lot, min_qty)


def split_twap(total, n_slices, start_ns, end_ns, lot, min_qty):
    qtys = allocate(total, [1] * n_slices, lot, min_qty)
    times = [start_ns + (end_ns - start_ns) * k // n_slices for k in range(n_slices)]
    return [t for t, q in zip(times, qtys, strict=True) if q], [q for q in qtys if q]


def split_vwap(total, profile, bucket_times, lot, min_qty):
    qtys = allocate(total, list(profile), lot, min_qty)
    return [t for t, q in zip(bucket_times, qtys, strict=True) if q], [q for q in qtys if q]


def xorshift(state: int) -> tuple[int, int]:
    x = state
    x ^= x >> 12
    x ^= (x << 25) & MASK
    x ^= x >> 27
    return x, (x * 2685821657736338717) & MASK


def split_iceberg(total, display, variance_ppm, seed, lot, min_qty):
    left = _lots(total, lot)
    low = min_lots(min_qty, lot)
    base = max(low, display // lot)
    if left // base >= MAX_CHILDREN:
        raise ValueError("split would make more than MAX_CHILDREN children")
    spread = base * min(variance_ppm, 999_999) // 1_000_000
    state = (seed & MASK) | 1
    clips = []
    while left > 0:
        clip = base
        if spread:
            state, r = xorshift(state)
            clip = base - spread + r % (2 * spread + 1)
        clip = min(max(clip, low), left)
        clips.append(clip * lot)
        left -= clip
    if len(clips) > 1 and clips[-1] < min_qty:
        last = clips.pop()
        clips[-1] += last
    return clips
