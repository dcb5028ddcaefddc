"""Plain-Python reference implementations of the kernels: readable, slow, and the ground truth.

Each module mirrors a kernel module and is written to be read: Python integers (no overflow),
``fractions.Fraction`` for ratios, lists and dataclasses instead of arrays, and exposure and equity
recomputed from the positions instead of cached. Property tests (tests/kernels) run kernel and
reference on the same random inputs and require identical results; the benchmarks report the
kernels' speed-up over these references.
"""
