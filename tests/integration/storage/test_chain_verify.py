"""The hash chain as documented in ledger/chain.py, and ``tally verify`` finding the first
tampered row (after dropping the triggers that normally prevent tampering) on both databases."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import chain, jsonx
from ledger.storage import triggers
from ledger.storage.engine import upgrade
from ledger.storage.store import LedgerStore
from ledger.storage.verify import verify_store
from tests.integration.storage.test_store import order, toy_planner
from worker.app.cli import main

NOW = datetime(2024, 8, 6, 7, 19, 26, 123456, tzinfo=UTC)
GENESIS = "0" * 64


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_documented_encoding_golden_vector() -> None:
    """Spelled out by hand from the chain.py docstring, so a change to the encoding fails here."""
    payload = jsonx.loads('{"b":"0.00102549","a":7.6883,"c":"café"}')
    content = _sha('{"a":7.6883,"b":"0.00102549","c":"café"}')
    assert chain.content_hash(payload) == content
    snapshot = chain.snapshot_record(
        seq=1, source="aurpay", kind="order", external_id="A", version=1,
        observed_at=NOW, content_hash=content,
    )  # fmt: skip
    snapshot_text = (
        f'{{"content_hash":"{content}","external_id":"A","kind":"order",'
        '"observed_at":"2024-08-06T07:19:26.123456Z","seq":1,"source":"aurpay",'
        '"type":"snapshot","version":1}'
    )
    first = _sha(f"{GENESIS}\n{snapshot_text}")
    assert chain.entry_hash(GENESIS, snapshot) == first
    journal = chain.journal_record(
        seq=2, key="k", date=NOW, description="d", source="aurpay", object_kind="order",
        external_id="A", snapshot_seq=1, reverses_key=None,
        postings=[("assets:x", "BTC", Decimal("1.500000000000000000")),
                  ("income:y", "BTC", Decimal("-1.5"))],
    )  # fmt: skip
    journal_text = (
        '{"date":"2024-08-06T07:19:26.123456Z","description":"d","external_id":"A","key":"k",'
        '"object_kind":"order","postings":[["assets:x","BTC","1.5"],["income:y","BTC","-1.5"]],'
        '"reverses_key":null,"seq":2,"snapshot_seq":1,"source":"aurpay","type":"journal"}'
    )
    assert chain.entry_hash(first, journal) == _sha(f"{first}\n{journal_text}")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    text=st.lists(st.text(), min_size=3, max_size=3),
    numbers=st.tuples(st.integers(1, 2**62), st.integers(1, 2**31)),
    moment=st.datetimes(timezones=st.timezones()),
)
def test_fast_snapshot_hash_equals_the_documented_encoding(
    text: list[str], numbers: tuple[int, int], moment: datetime
) -> None:
    """The append path's direct encoding must give the spec's bytes for any text: quotes,
    backslashes, control characters, U+2028, astral characters."""
    fields = dict(
        seq=numbers[0], source=text[0], kind=text[1], external_id=text[2],
        version=numbers[1], observed_at=moment, content_hash="ab" * 32,
    )  # fmt: skip
    documented = chain.entry_hash(GENESIS, chain.snapshot_record(**fields))  # type: ignore[arg-type]
    assert chain.snapshot_entry_hash(GENESIS, **fields) == documented  # type: ignore[arg-type]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=300, deadline=None, derandomize=True)
@given(payload=JSON_VALUES)
def test_content_hash_is_sha256_of_jsonx_canonical(payload: object) -> None:
    assert chain.content_hash(payload) == hashlib.sha256(jsonx.canonical(payload)).hexdigest()


@pytest.fixture
def store(ledger_url: str, open_store: Callable[..., LedgerStore]) -> LedgerStore:
    """seq 1 A PENDING · 2 B SUCCESS · 3 its entry · 4 A SUCCESS · 5 its entry."""
    store = open_store(ledger_url, toy_planner)
    store.append([order("A"), order("B", "SUCCESS")], observed_at=NOW)
    store.append([order("A", "SUCCESS")], observed_at=NOW)
    assert store.head()[0] == 5
    return store


def _tamper(store: LedgerStore, *statements: str) -> None:
    with store.engine.begin() as conn:
        for statement in triggers.drop_statements(store.engine.dialect.name):
            conn.execute(sa.text(statement))
        for statement in statements:
            conn.execute(sa.text(statement))


def _cli_verify(
    store: LedgerStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.setenv("DATABASE_URL", store.engine.url.render_as_string(hide_password=False))
    code = main(["verify", "--batch", "2"])
    return code, capsys.readouterr().out.strip()


def test_intact_ledger_passes(
    store: LedgerStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seq, head = store.head()
    assert seq == 5 and head == list(store.iter_journal())[-1].entry_hash
    assert _cli_verify(store, monkeypatch, capsys) == (
        0,
        f"ledger intact: 5 entries, head 5:{head}",
    )


def test_empty_ledger_passes(ledger_url: str, open_store: Callable[..., LedgerStore]) -> None:
    assert verify_store(open_store(ledger_url)).message() == (
        f"ledger intact: 0 entries, head 0:{GENESIS}"
    )


@pytest.mark.parametrize(
    ("statements", "seq", "problem"),
    [
        (
            ["UPDATE ledger_snapshot SET payload = REPLACE(payload, '19.0012', '19.0013') "
             "WHERE seq = 4"],
            4,
            "payload does not match its content hash",
        ),
        (
            ["UPDATE ledger_posting SET amount = 20 WHERE journal_seq = 3 AND idx = 0"],
            3,
            "journal entry does not match its entry hash (row changed)",
        ),
        (
            ["UPDATE ledger_journal SET description = 'edited' WHERE seq = 5"],
            5,
            "journal entry does not match its entry hash (row changed)",
        ),
        (
            ["DELETE FROM ledger_posting WHERE journal_seq = 3",
             "DELETE FROM ledger_journal WHERE seq = 3"],
            3,
            "row is missing (the next row is seq 4)",
        ),
        (
            ["UPDATE ledger_head SET seq = 4"],
            4,
            "head row says seq 4",
        ),
    ],
)  # fmt: skip
def test_tampering_is_reported_at_its_seq(
    store: LedgerStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    statements: list[str],
    seq: int,
    problem: str,
) -> None:
    _tamper(store, *statements)
    code, out = _cli_verify(store, monkeypatch, capsys)
    assert code == 1
    assert out.startswith(f"chain broken at seq {seq}: {problem}")


def test_rehashed_payload_still_breaks_the_entry_hash(store: LedgerStore) -> None:
    (snapshot,) = [s for s in store.iter_snapshots() if s.seq == 4]
    forged = {**snapshot.payload, "amount": "1"}
    _tamper(
        store,
        f"UPDATE ledger_snapshot SET payload = '{jsonx.dumps(forged)}', "
        f"content_hash = '{chain.content_hash(forged)}' WHERE seq = 4",
    )
    report = verify_store(store)
    assert (report.broken_at, report.problem) == (
        4,
        "snapshot does not match its entry hash (row changed)",
    )


def test_garbage_in_a_sqlite_column_is_reported_not_raised(
    sqlite_url: str, open_store: Callable[..., LedgerStore]
) -> None:
    upgrade(sqlite_url)
    store = open_store(sqlite_url, toy_planner)
    store.append([order("B", "SUCCESS")], observed_at=NOW)
    _tamper(store, "UPDATE ledger_posting SET amount = 'abc' WHERE idx = 1")
    report = verify_store(store)
    assert report.broken_at == 2 and report.problem.startswith("unreadable row")  # type: ignore[union-attr]


def test_verify_expect_head_catches_a_truncated_tail(
    store: LedgerStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone able to drop the triggers deletes the last rows and moves the head back: the
    chain still links, so only a head published earlier can tell."""
    code, out = _cli_verify(store, monkeypatch, capsys)
    published = out.rsplit(" ", 1)[-1]
    assert code == 0 and published == f"5:{store.head()[1]}"
    (at_three,) = [j for j in store.iter_journal() if j.seq == 3]
    _tamper(
        store,
        "DELETE FROM ledger_posting WHERE journal_seq = 5",
        "DELETE FROM ledger_journal WHERE seq = 5",
        "DELETE FROM ledger_snapshot WHERE seq = 4",
        f"UPDATE ledger_head SET seq = 3, hash = '{at_three.entry_hash}'",
    )
    assert _cli_verify(store, monkeypatch, capsys)[0] == 0  # consistent on its own
    code = main(["verify", "--expect-head", published])
    out = capsys.readouterr().out.strip()
    assert code == 1
    assert out == (
        f"chain broken at seq 5: the expected head {published} is not in the ledger: "
        "the chain ends at seq 3 (its tail was removed)"
    )


def test_verify_expect_head_catches_a_rewritten_row(
    store: LedgerStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seq, head = store.head()
    monkeypatch.setenv("DATABASE_URL", store.engine.url.render_as_string(hide_password=False))
    assert main(["verify", "--expect-head", f"{seq}:{head}"]) == 0
    assert main(["verify", "--expect-head", f"{seq - 1}:{head}"]) == 1
    assert "is not in the ledger (rewritten)" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["5", "x:abc", f"5:{'z' * 64}", f"-1:{'0' * 64}"])
def test_verify_expect_head_refuses_a_malformed_head(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["verify", f"--expect-head={bad}"])
    assert exit_.value.code == 2
    assert "expected SEQ:HASH" in capsys.readouterr().err
