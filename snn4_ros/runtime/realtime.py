"""Is a live or paced run keeping up with real time?

One small reporter shared by the commands that pace data to the wall clock (``snn4 demo``'s
status line, ``snn4 replay --rate``; ``snn4 up`` can use it too): a run that silently
delivers 66 of 150 bins looks like a working system with a bad model, so falling behind is
said, with the fraction, where the user is looking.
"""

from __future__ import annotations

TOLERANCE = 0.9          # below 90 % of the asked rate counts as behind


def real_time_fraction(data_s: float, wall_s: float) -> float | None:
    """Seconds of data handled per second of wall clock (1.0: real time)."""
    return data_s / wall_s if wall_s > 0 else None


def behind_real_time(data_s: float, wall_s: float, wanted: float = 1.0,
                     tolerance: float = TOLERANCE) -> str | None:
    """``"behind real time: 0.44x of the 1x asked (2.6 s of data in 6.0 s)"`` when the run
    kept less than ``tolerance`` of the asked rate ``wanted``, else None."""
    f = real_time_fraction(data_s, wall_s)
    if f is None or f >= tolerance * wanted:
        return None
    return (f"behind real time: {f:.2f}x of the {wanted:g}x asked ({data_s:.1f} s of data in "
            f"{wall_s:.1f} s)")
