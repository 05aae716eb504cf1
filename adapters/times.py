"""Times as the protocols hold them: timezone-naive UTC :class:`~datetime.datetime`.

One home for the conversions the adapters, the live loop and the sandbox all need."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, as timezone-naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as timezone-naive UTC (a naive one is taken as UTC already)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def minute_floor(moment: datetime) -> datetime:
    """``moment`` rounded down to its minute."""
    return moment.replace(second=0, microsecond=0)
