"""Compiled (numba) state machines for the two stateful 16-bit stream encodings.

evt3 and libcaer_cmp are sequences of state words (time high/low, row or column address,
vector base) interleaved with event words; a straight loop over the words, exactly as the
reference C++ decoders do it, runs at hundreds of millions of words per second once compiled,
where the equivalent numpy forward-fill needs some twenty full passes over the stream.
Each kernel counts first (to size the output) and then fills; state is passed in and out
as an int64 array so the Python side keeps it explicit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# evt3 state slots
E_Y, E_TLOW, E_THIGH, E_POL, E_BASE, E_VALID = range(6)
# libcaer_cmp state slots
C_X, C_POL, C_BASE = range(3)


@njit(cache=True, nogil=True)
def _popcount(v):
    c = 0
    while v:
        v &= v - 1
        c += 1
    return c


@njit(cache=True, nogil=True)
def _emit_vector(t, x, y, p, k, tv, bits, nb, base, fixed, pol, along_x, width, height):
    """Events of one vector word: bit b set -> an event at ``base + b`` along x (evt3: a
    row's columns) or along y (libcaer_cmp: a column's rows), ``fixed`` the other
    coordinate. Writes from index ``k``; returns (k after, events outside the sensor)."""
    n_oor = 0
    for b in range(nb):
        if bits & (1 << b):
            v = (base + b) & 0xFFFF
            ex = v if along_x else fixed
            ey = fixed if along_x else v
            if ex < width and ey < height:
                t[k] = tv
                x[k] = ex
                y[k] = ey
                p[k] = pol
                k += 1
            else:
                n_oor += 1
    return k, n_oor


@njit(cache=True, nogil=True, inline="always")
def _evt3_time(word, c, thigh, tlow, valid, seen_high):
    """A TIME_HIGH (c == 8, with the 24-bit roll-over) or TIME_LOW (c == 6) word: the new
    (thigh, tlow, valid, seen_high). The stream becomes valid at the first TIME_LOW after a
    TIME_HIGH, as the reference decoder does. Shared by ``evt3_decode`` and ``evt3_skim``,
    whose state must end identical."""
    if c == 8:
        v = word & 0xFFF
        last = (thigh >> 12) & 0xFFF
        if v < last and last - v > 10:
            thigh += 1 << 24
        thigh = (thigh & ~np.int64((1 << 24) - 1)) | (v << 12)
        seen_high = True
    else:
        tlow = word & 0xFFF
        if valid == 0 and seen_high:
            valid = 1
    return thigh, tlow, valid, seen_high


@njit(cache=True, nogil=True)
def evt3_decode(w, st, width, height):
    """Decode evt3 words; returns (t, x, y, p, trig_t, trig_id, trig_edge, n_oor, n_bad).

    ``st`` (int64[6]) is updated in place. Times are (high | low) * 1000 ns; TIME_HIGH going
    back by more than 10 counts a roll-over of the 24-bit time. Nothing is emitted before a
    TIME_HIGH followed by a TIME_LOW has been seen.
    """
    n = w.shape[0]
    cap = 0
    ntr = 0
    for i in range(n):
        c = w[i] >> 12
        if c == 2:
            cap += 1
        elif c == 4:
            cap += _popcount(w[i] & 0xFFF)
        elif c == 5:
            cap += _popcount(w[i] & 0xFF)
        elif c == 10:
            ntr += 1
    t = np.empty(cap, np.int64)
    x = np.empty(cap, np.uint16)
    y = np.empty(cap, np.uint16)
    p = np.empty(cap, np.uint8)
    tt = np.empty(ntr, np.int64)
    tid = np.empty(ntr, np.uint8)
    tedge = np.empty(ntr, np.uint8)
    ey, tlow, thigh, pol, base, valid = st[0], st[1], st[2], st[3], st[4], st[5]
    k = 0
    kt = 0
    n_oor = 0
    n_bad = 0
    seen_high = False
    for i in range(n):
        word = np.int64(w[i])
        c = word >> 12
        if c == 8 or c == 6:
            thigh, tlow, valid, seen_high = _evt3_time(word, c, thigh, tlow, valid, seen_high)
            continue
        if valid == 0:
            continue                     # as the reference: only time words until valid
        if c == 0:
            ey = word & 0x7FF
        elif c == 2:
            ex = word & 0x7FF
            if ex < width and ey < height:
                t[k] = (thigh | tlow) * 1000
                x[k] = ex
                y[k] = ey
                p[k] = (word >> 11) & 1
                k += 1
            else:
                n_oor += 1
        elif c == 3:
            base = word & 0x7FF
            pol = (word >> 11) & 1
        elif c == 4 or c == 5:
            nb = 12 if c == 4 else 8
            k, oor = _emit_vector(t, x, y, p, k, (thigh | tlow) * 1000,
                                  word & (0xFFF if c == 4 else 0xFF), nb, base, ey, pol,
                                  True, width, height)
            n_oor += oor
            base = (base + nb) & 0xFFFF
        elif c == 10:
            tt[kt] = (thigh | tlow) * 1000
            tid[kt] = (word >> 8) & 0xF
            tedge[kt] = word & 1
            kt += 1
        elif c == 1 or c == 11 or c == 12 or c == 13:
            n_bad += 1
        # 7, 9, 14, 15: continued / padding / others: ignored as in the reference
    st[0], st[1], st[2], st[3], st[4], st[5] = ey, tlow, thigh, pol, base, valid
    return t[:k], x[:k], y[:k], p[:k], tt[:kt], tid[:kt], tedge[:kt], n_oor, n_bad


@njit(cache=True, nogil=True)
def cmp_decode(w, st, time_base, width, height):
    """Decode libcaer_cmp words; returns (t, x, y, p, n_oor, n_bad); ``st`` (int64[3])."""
    n = w.shape[0]
    cap = 0
    for i in range(n):
        c = w[i] >> 12
        if c == 3:
            cap += 1
        elif c == 5:
            cap += _popcount(w[i] & 0xFF)
    t = np.empty(cap, np.int64)
    x = np.empty(cap, np.uint16)
    y = np.empty(cap, np.uint16)
    p = np.empty(cap, np.uint8)
    ex, pol, base = st[0], st[1], st[2]
    thigh = np.int64(0)
    tlow = np.int64(0)
    k = 0
    n_oor = 0
    n_bad = 0
    for i in range(n):
        word = np.int64(w[i])
        c = word >> 12
        if c == 0:
            thigh = (word & 0xFFF) << 12
        elif c == 1:
            tlow = word & 0xFFF
        elif c == 2:
            ex = word & 0x7FF
        elif c == 3:
            ey = word & 0x7FF
            if ex < width and ey < height:
                t[k] = (thigh | tlow) * 1000 + time_base
                x[k] = ex
                y[k] = ey
                p[k] = (word >> 11) & 1
                k += 1
            else:
                n_oor += 1
        elif c == 4:
            base = word & 0x7FF
            pol = (word >> 11) & 1
        elif c == 5:
            k, oor = _emit_vector(t, x, y, p, k, (thigh | tlow) * 1000 + time_base,
                                  word & 0xFF, 8, base, ex, pol, False, width, height)
            n_oor += oor
            base = (base + 8) & 0xFFFF
        else:
            n_bad += 1
    st[0], st[1], st[2] = ex, pol, base
    return t[:k], x[:k], y[:k], p[:k], n_oor, n_bad


@njit(cache=True, nogil=True)
def evt3_skim(w, st, width, height):
    """What ``evt3_decode`` leaves behind without making any event: for data that is shed
    anyway (latency-bounded processing), where only the stream's state must stay exact.
    Returns (events, ON events, first and last event time in ns (-1: none), events whose
    time goes back, n_oor, n_bad, triggers); ``st`` is updated in place exactly as
    ``evt3_decode`` updates it. One pass, no output arrays."""
    ey, tlow, thigh, pol, base, valid = st[0], st[1], st[2], st[3], st[4], st[5]
    k = 0
    n_on = 0
    n_oor = 0
    n_bad = 0
    n_back = 0
    ntr = 0
    t_first = np.int64(-1)
    t_last = np.int64(-1)
    seen_high = False
    for i in range(w.shape[0]):
        word = np.int64(w[i])
        c = word >> 12
        if c == 8 or c == 6:
            thigh, tlow, valid, seen_high = _evt3_time(word, c, thigh, tlow, valid, seen_high)
            continue
        if valid == 0:
            continue
        if c == 0:
            ey = word & 0x7FF
        elif c == 2 or c == 4 or c == 5:
            tv = (thigh | tlow) * 1000
            if c == 2:
                bits = 1
                nb = 1
                b0 = word & 0x7FF
                p = (word >> 11) & 1
            else:
                nb = 12 if c == 4 else 8
                bits = word & (0xFFF if c == 4 else 0xFF)
                b0 = base
                p = pol
            for b in range(nb):
                if bits & (1 << b):
                    ex = (b0 + b) & 0xFFFF if c != 2 else b0
                    if ex < width and ey < height:
                        if k == 0:
                            t_first = tv
                        elif tv < t_last:
                            n_back += 1
                        t_last = tv
                        k += 1
                        n_on += p
                    else:
                        n_oor += 1
            if c != 2:
                base = (base + nb) & 0xFFFF
        elif c == 3:
            base = word & 0x7FF
            pol = (word >> 11) & 1
        elif c == 10:
            ntr += 1
        elif c == 1 or c == 11 or c == 12 or c == 13:
            n_bad += 1
    st[0], st[1], st[2], st[3], st[4], st[5] = ey, tlow, thigh, pol, base, valid
    return k, n_on, t_first, t_last, n_back, n_oor, n_bad, ntr
