"""One grammar for the simulator's specs, wherever a spec names it.

Why: ``synthetic:3`` once meant a seed as an event source (``snn4 up --source``) and 3 clips
per class as a dataset (``snn4 eval --dataset``). Now the fields have names, the same
everywhere::

    synthetic                      (defaults)
    synthetic:seed=7               an event source: the simulated camera, seeded
    synthetic:n=30,seed=2          a dataset: 30 clips per class, seed 2
    synthetic-real:n=12            a dataset from the real-looking simulator

* ``n`` -- clips per class; a dataset's only (a source is an endless stream);
* ``seed`` -- the simulator's seed (a dataset's default: 0 to train, 1 to evaluate).

The positional short form keeps ONE meaning, the fields in that order: ``synthetic:N[:SEED]``
(``synthetic:30:2`` is ``n=30,seed=2``), as the model cards and recipes write it. A source has
no ``n``, so a bare number there is refused with a one-line hint (``synthetic:seed=3``)
rather than read as a seed in one place and a count in another.
"""

from __future__ import annotations

from .errors import UserError, did_you_mean

FIELDS = {"n": "clips per class", "seed": "the simulator's seed"}
GRAMMAR = "synthetic[:n=N][,seed=S] (short: synthetic:N[:SEED])"


class SpecError(UserError):
    """A spec (source or dataset) that cannot work: one line saying what to write."""


def _whole(where: str, name: str, value: str, hint: str) -> int:
    v = value.strip()
    if not v.isdigit():
        raise SpecError(f"{where}: {name} wants a whole number, got {value!r} ({hint})")
    return int(v)


def synthetic_fields(spec: str, *, source: bool = False, what: str = "dataset") -> dict:
    """The named fields of a ``synthetic`` / ``synthetic-real`` spec as ints (only those
    given). ``source``: an event source, which takes ``seed`` only and no short form."""
    kind, _, arg = spec.partition(":")
    allowed = ("seed",) if source else tuple(FIELDS)
    example = (f"{kind}:seed=3" if source else f"{kind}:n=20,seed=1 or {kind}:20:1")
    hint = f"e.g. {example}"
    where = f"{what} {spec!r}"
    if not arg.strip():
        return {}
    if "=" not in arg:
        parts = arg.split(":")
        if source and arg.strip().isdigit():
            raise SpecError(
                f"{where}: a bare number is a dataset's clip count "
                f"({kind}:N[:SEED]); a source is an endless stream: write {kind}:seed={arg}")
        if source:
            raise SpecError(f"{where}: want {kind}:seed=S, S a whole number ({hint})")
        if len(parts) > 2:
            raise SpecError(f"{where}: want {kind}:N[:SEED] or named fields ({hint})")
        vals = [_whole(where, f, p, hint) for f, p in zip(("n", "seed"), parts)]
        out = dict(zip(("n", "seed"), vals))
    else:
        out = {}
        for item in arg.split(","):
            name, eq, value = item.partition("=")
            name = name.strip()
            if not eq:
                raise SpecError(f"{where}: {item!r} is not NAME=VALUE (fields: "
                                f"{', '.join(allowed)}; {hint})")
            if name not in FIELDS:
                raise SpecError(f"{where}: no field {name!r}"
                                f"{did_you_mean(name, allowed)} (fields: "
                                f"{', '.join(allowed)}; {hint})")
            if name not in allowed:
                raise SpecError(f"{where}: {name}= ({FIELDS[name]}) is a dataset's field; an "
                                f"event source is an endless stream ({hint})")
            if name in out:
                raise SpecError(f"{where}: {name} given twice")
            out[name] = _whole(where, name, value, hint)
    if "n" in out and out["n"] < 1:
        raise SpecError(f"{where}: n (clips per class) must be at least 1")
    return out
