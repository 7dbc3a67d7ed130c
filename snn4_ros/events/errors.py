"""Errors raised by the event readers and codecs.

Every error names where it happened (file, message index, encoding) and what is wrong, so a
user staring at a failed replay knows which recording to look at.
"""

from __future__ import annotations


class EventDataError(ValueError):
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
