"""Errors raised by the event readers and codecs.

Every error names where it happened (file, message index, encoding) and what is wrong, so a
user staring at a failed replay knows which recording to look at.
"""

from __future__ import annotations

import difflib


class UserError(ValueError):
    """A mistake the user can fix: a wrong name, spec, path or value.

    The message is the whole story in one line -- what was wrong, what to do, the valid
    choices -- because the command line prints it alone, without a traceback (``--debug``
    shows one). Every layer raises subclasses of it; it lives here, in the lowest layer, so
    that every layer can."""

    exit_code = 2


def did_you_mean(word: str, choices, *, n: int = 1) -> str:
    """``"; did you mean 'max_linear'?"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=0.6)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


class EventDataError(UserError):
    """Bad event data: corrupted, truncated, out of range, or in an unknown encoding."""

    def __init__(self, what: str, *, where: str | None = None):
        self.what = what
        self.where = where
        super().__init__(f"{where}: {what}" if where else what)

    def at(self, where: str) -> "EventDataError":
        """The same error with a location prepended (file, then message)."""
        return type(self)(self.what, where=f"{where}: {self.where}" if self.where else where)


class UnknownEncodingError(EventDataError):
    """An EventPacket encoding no decoder here understands."""


class TruncatedDataError(EventDataError):
    """A payload or file that ends in the middle of a record."""


class CorruptDataError(EventDataError):
    """Bytes that cannot be valid in the stated encoding."""


class OutOfRangeError(EventDataError):
    """Event coordinates outside the sensor geometry."""


class TimeOrderError(EventDataError):
    """Timestamps that go backwards."""


class NoEventsError(EventDataError):
    """A recording or bag topic that holds no event data at all."""
