"""Wire-format helpers shared by the backend and the HTTP layer.

Xero speaks "Microsoft JSON dates" (``/Date(ms+0000)/``) and exact decimal
amounts. xero-python raises ``ValueError`` on ISO dates in Invoice/Contact/
CreditNote date fields, so everything the sandbox emits goes through here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

_MS_DATE_RE = re.compile(r"^/Date\((?P<ms>-?\d+)(?P<tz>[+-]\d{4})?\)/$")
_ISO_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")

TWO_DP = Decimal("0.01")
FOUR_DP = Decimal("0.0001")
ZERO_UUID = "00000000-0000-0000-0000-000000000000"


# ---------------------------------------------------------------- dates
def ms_date(day: dt.date) -> str:
    """A calendar date as Xero emits it: midnight UTC in ms, with ``+0000``."""
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return f"/Date({int(midnight.timestamp() * 1000)}+0000)/"


def ms_datetime(epoch_seconds: float) -> str:
    """A UTC instant (e.g. UpdatedDateUTC) in the same Microsoft format."""
    return f"/Date({int(epoch_seconds * 1000)}+0000)/"


def iso_utc(epoch_seconds: float) -> str:
    """The identity service's style: ISO without zone and 7 fractional digits."""
    moment = dt.datetime.fromtimestamp(epoch_seconds, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"


def utc_date(epoch_seconds: float) -> dt.date:
    return dt.datetime.fromtimestamp(epoch_seconds, tz=dt.timezone.utc).date()


def parse_date(value: Any) -> dt.date | None:
    """Accept every date shape clients really send: ``/Date(ms)/`` (xero-python),
    ``/Date(ms+0000)/`` (echoed responses) and ``YYYY-MM-DD`` (hand-written
    clients, optionally with a time part). Returns None when unparseable."""
    if not isinstance(value, str):
        return None
    text = value.strip().replace("\\/", "/")
    match = _MS_DATE_RE.match(text)
    if match:
        moment = dt.datetime.fromtimestamp(int(match["ms"]) / 1000, tz=dt.timezone.utc)
        tz = match["tz"]
        if tz:
            # The offset only shifts the wall clock; the calendar date is the local one.
            sign = 1 if tz[0] == "+" else -1
            offset = dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])) * sign
            moment = moment + offset
        return moment.date()
    match = _ISO_DATE_RE.match(text)
    if match:
        try:
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------- money
def to_decimal(value: Any) -> Decimal | None:
    """JSON numbers arrive as Decimal (parse_float) or int; strings are tolerated."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        return None


def round2(value: Decimal) -> Decimal:
    return value.quantize(TWO_DP, rounding=ROUND_HALF_UP)


def round_dp(value: Decimal, places: int) -> Decimal:
    return value.quantize(FOUR_DP if places == 4 else TWO_DP, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------- names
def fold(text: str) -> str:
    """Xero's name comparisons are case- and accent-insensitive (SQL CI_AI
    collation): casefold, decompose, drop combining marks, trim."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# ---------------------------------------------------------------- JSON
def loads(body: bytes) -> Any:
    """Parse a request body keeping amounts exact (Decimal, never float)."""
    return json.loads(body.decode("utf-8"), parse_float=Decimal)


def dumps(value: Any) -> bytes:
    """Serialise with Decimals written verbatim (``110.00``), which the stdlib
    encoder cannot do without going through float."""
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(value, ensure_ascii=False)
