"""What validating any gateway's JSON shares: the record base, validation errors, and the
readers of every value that reaches a bounded column or a parser (ids, currency codes, amounts,
times), so a bad value costs only its own record.

Each gateway's ``payloads`` module keeps its own schemas.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from ledger import jsonx
from ledger.journal.postings import parse_amount
from ledger.model import MAX_CURRENCY, MAX_EXTERNAL_ID, RawRecord, Rejected


class InvalidRecord(ValueError):
    """One object failed validation; ``rejected`` holds its reason and raw JSON for quarantine."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(f"invalid {rejected.source} {rejected.kind}: {rejected.reason}")
        self.rejected = rejected


class InvalidPage(ValueError):
    """A list response whose frame (page facts, the items array) is not the documented shape."""


class FieldError(ValueError):
    """One field of an object failed validation; ``parse_record`` makes it an ``InvalidRecord``."""


@dataclass(frozen=True)
class GatewayRecord(ABC):
    """A validated object: the source and kind it is stored under, its id and its raw JSON
    (kept whole, so the ledger stores exactly what was received)."""

    source: ClassVar[str]
    kind: ClassVar[str]
    raw: Mapping[str, Any] = field(repr=False, hash=False)

    @property
    @abstractmethod
    def external_id(self) -> str: ...

    def to_raw_record(self) -> RawRecord:
        """The record as the ledger stores it: exactly the JSON that was received."""
        return RawRecord(self.source, self.kind, self.external_id, self.raw)


R = TypeVar("R", bound=GatewayRecord)


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value, for validation messages."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal):
        return "number"
    names = {str: "string", list: "array", dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def parse_record(
    cls: type[R], build: Callable[[Mapping[str, Any]], R], obj: Any, id_field: str
) -> R:
    """``build(obj)``, or ``InvalidRecord`` with the reason, the raw JSON and, when the object
    has a storable ``id_field`` (``is_id``), its id. ``build`` raises ``FieldError`` for a bad
    field; text no database can store (a lone surrogate) is refused before it."""
    if not isinstance(obj, Mapping):
        reason = f"expected a JSON object, got {json_type(obj)}"
        raise InvalidRecord(Rejected(source=cls.source, kind=cls.kind, reason=reason, raw=obj))
    external_id = obj.get(id_field)
    # The quarantine row keeps the id only when its column can hold it.
    known_id = external_id if is_id(external_id) else None
    if not _all_text_encodable(obj):
        # A lone surrogate ("\ud800") parses, but no database takes it as text: the raw JSON
        # is kept with it escaped again, as it was on the wire.
        reason = "not valid Unicode text: a lone surrogate in a string"
        raw = jsonx.dumps(obj).encode("utf-8", "backslashreplace").decode("utf-8")
        raise InvalidRecord(Rejected(cls.source, cls.kind, reason, raw, known_id))
    try:
        return build(obj)
    except FieldError as exc:
        raise InvalidRecord(Rejected(cls.source, cls.kind, str(exc), obj, known_id)) from None


def same_object(record: R, wanted: str) -> R:
    """``record``, when it is the object asked for by id; a single-object answer about another
    one is an ``InvalidRecord`` kept under the id asked for."""
    got = record.external_id
    if got != wanted:
        reason = f"{record.kind} id {got!r} does not match the requested {wanted!r}"
        raise InvalidRecord(Rejected(record.source, record.kind, reason, record.raw, wanted))
    return record


def known_status(status: str, known: Collection[str]) -> str:
    """``status`` when documented; anything else is quarantined rather than guessed at."""
    if status not in known:
        raise FieldError(f"status: unknown status {status!r}")
    return status


def parse_time(text: str, naive_tz: tzinfo = UTC) -> datetime:
    """ISO-8601 → aware UTC; a value without a zone is read as ``naive_tz``. An impossible date
    or one that leaves the representable range in UTC (``9999-12-31T23:59:59-05:00``) raises
    ``ValueError``, like any other malformed time."""
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=naive_tz)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"not an ISO-8601 time in range: {text[:40]!r}") from None


def is_id(value: Any) -> bool:
    """Whether ``value`` can be stored as an id: see ``read_id``."""
    return isinstance(value, str) and _bounded_token(value, MAX_EXTERNAL_ID) is None


def read_id(value: Any) -> str:
    """An object id, which reaches bounded columns (``external_id``, reconcile links and
    subjects): 1 to ``MAX_EXTERNAL_ID`` printable characters, no whitespace. The bound is the
    column's; the alphabet is inferred (documented ids are digits, or ``pt_``/``rf_`` and
    ``[A-Za-z0-9_-]``: docs/gateways/aurpay.md (A-ORD-3), docs/gateways/ebioro.md (E-PAY-2))."""
    return _token(value, MAX_EXTERNAL_ID)


def read_code(value: Any) -> str:
    """A currency or asset code, which journal postings carry as their commodity (a bounded
    column): 1 to ``MAX_CURRENCY`` printable characters, no whitespace. The bound is the
    column's; the alphabet is inferred from the documented codes (``USDC-TRC20``, ``USD``)."""
    return _token(value, MAX_CURRENCY)


def read_amount(value: Any, *, signed: bool = False) -> Decimal:
    """An exact amount from a JSON number or a string in ``ledger.money.NUMBER``'s grammar,
    within the journal's sanity range; negative only when ``signed``."""
    amount = parse_amount(value)  # raises InvalidAmount, a ValueError
    if amount < 0 and not signed:
        raise ValueError(f"negative amount {amount}")
    return amount


def _token(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {json_type(value)}")
    problem = _bounded_token(value, limit)
    if problem is not None:
        raise ValueError(problem)
    return value


def _bounded_token(text: str, limit: int) -> str | None:
    """What is wrong with ``text`` as a token of at most ``limit`` characters (None: nothing)."""
    if not text:
        return "empty"
    if len(text) > limit:
        return f"{len(text)} characters, longer than the {limit} the ledger stores"
    # isprintable() is False for control, format, surrogate and every Unicode space but " ".
    if not text.isprintable() or " " in text:
        return "contains whitespace or unprintable characters"
    return None


def _all_text_encodable(obj: Any) -> bool:
    """Every key and string in the parsed JSON ``obj`` is UTF-8 encodable (no lone surrogate).

    Checked string by string, as ASCII first (a flag CPython keeps), rather than by encoding
    the whole record: every record of every page passes here. A loop with a stack, not
    recursion: how deep a record nests is the gateway's choice."""
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and not _encodable(value):
                return False
        elif isinstance(value, Mapping):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
