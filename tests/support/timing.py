"""Time bounds in tests, stated against what the defect under test would cost, never as a speed target.

A loaded two-core machine can make a correct call take seconds longer than usual; it cannot make it take as long
as waiting out a 30 s hang or running four 2 s calls one after another. So a test makes the broken behaviour
expensive (long fake delays that only the defect would wait for) and asserts the call took under half of that.
"""

from __future__ import annotations


def clearly_before(elapsed: float, wrong: float, what: str) -> None:
    """`elapsed` is under half of `wrong`, the least time the broken behaviour would take."""
    assert elapsed < wrong / 2, f"{what}: took {elapsed:.2f}s, and the defect would take at least {wrong:.1f}s"
