"""Alert delivery over real HTTP: each change reaches each sink once, with its id, through a
receiver that fails first; Slack's payload shape; no webhook secret in any log line."""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ledger.alerts.outbox import Outbox
from ledger.alerts.store import AlertStore, Notification
from ledger.model import RawRecord
from ledger.precision import PrecisionTable
from ledger.storage.open import open_ledger
from tests.helpers.books import DERIVERS, PLANS
from tests.strategies import order_payload
from worker.alerts.reconcile import ReconcileContext, reconcile
from worker.alerts.sinks import (
    REDELIVER_AFTER,
    DeliveryFailed,
    DeliveryRefused,
    HttpSink,
    deliveries_due,
    slack_body,
    webhook_body,
)
from worker.app.cli import main
from worker.app.session import worker_session
from worker.broker import wait_idle
from worker.config import Settings, load_settings
from worker.logging import configure_logging
from worker.sync.actors import ALERTS_QUEUE, RECONCILE_QUEUE

HOOK_TOKEN = "T0KEN-hook-9f8e7d6c5b4a"
SLACK_TOKEN = "T0KEN-slack-1a2b3c4d5e6f"
OBSERVED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Received:
    sink: str
    alert_id: int
    revision: int
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    """Answers 500 to the first request for each (sink, alert, revision), then 200."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> int:
        sink = "webhook" if path.startswith("/hooks/") else "slack"
        if sink == "webhook":
            alert_id, revision = body["id"], body["revision"]
        else:  # Slack's body carries the id and revision in its context line
            context = body["blocks"][-1]["elements"][0]["text"]
            words = context.split()
            alert_id, revision = int(words[2]), int(words[5])
        with self.lock:
            seen = any(
                (r.sink, r.alert_id, r.revision) == (sink, alert_id, revision)
                for r in self.requests
            )
            status = 200 if seen else 500
            self.requests.append(Received(sink, alert_id, revision, status, body, headers))
        return status

    def delivered(self, sink: str) -> Counter[tuple[int, int]]:
        ok = [r for r in self.requests if r.sink == sink and r.status == 200]
        return Counter((r.alert_id, r.revision) for r in ok)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = state.answer(self.path, dict(self.headers), json.loads(raw))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _settings(url: str, receiver: Receiver) -> Settings:
    return load_settings(
        database_url=url,
        aurpay_api_key="unused-in-this-test-0001",
        tally_alert_webhook_url=f"{receiver.url}/hooks/{HOOK_TOKEN}",
        tally_slack_webhook_url=f"{receiver.url}/slack/{SLACK_TOKEN}",
    )


def _append(url: str, *orders: tuple[str, str]) -> None:
    store = open_ledger(url, PrecisionTable(), derivers=DERIVERS)
    try:
        records = [
            RawRecord(
                "aurpay",
                "order",
                order_id,
                order_payload(order_id=order_id, amount="1.0", fee="0.1", obtained=obtained),
            )
            for order_id, obtained in orders
        ]
        store.append(records, observed_at=OBSERVED)
    finally:
        store.close()


def _alert_ids(url: str) -> set[int]:
    store = open_ledger(url, PrecisionTable())
    try:
        statuses = ("open", "acknowledged", "resolved")
        return {a.id for a in AlertStore(store.engine).list_alerts(statuses)}
    finally:
        store.close()


def test_each_change_reaches_each_sink_once_through_a_failing_receiver(
    ledger_url: str, receiver: Receiver
) -> None:
    logs = io.StringIO()
    configure_logging("debug", "json", (), logs)  # no redaction: our lines must not hold secrets
    _append(ledger_url, ("o1", "0.8"), ("o2", "0.7"))
    settings = _settings(ledger_url, receiver).model_copy(
        update={"tally_alert_retry_min_backoff_ms": 20}
    )
    with worker_session(settings) as session:
        actors = session.alerts

        def reconcile() -> None:
            actors.reconcile.send(False)
            wait_idle(session.broker, [RECONCILE_QUEUE, ALERTS_QUEUE], timeout=60)

        reconcile()
        ids = _alert_ids(ledger_url)
        assert len(ids) == 2
        for sink in ("webhook", "slack"):
            assert receiver.delivered(sink) == {(i, 1): 1 for i in ids}
        assert Counter(r.status for r in receiver.requests) == {500: 4, 200: 4}
        for r in receiver.requests:
            if r.sink == "webhook":
                assert r.body["id"] == r.body["alert"]["id"] == int(r.headers["X-Tally-Alert-Id"])
                assert r.headers["Idempotency-Key"] == f"tally-alert-{r.alert_id}-r{r.revision}"
                assert r.body["event"] == "alert.opened"

        seen = len(receiver.requests)
        reconcile()
        assert len(receiver.requests) == seen  # same evidence: nothing sent again

        _append(ledger_url, ("o1", "0.9"))  # o1 reconciles now
        reconcile()
        resolved = [r for r in receiver.requests[seen:] if r.status == 200]
        assert sorted((r.sink, r.revision) for r in resolved) == [("slack", 2), ("webhook", 2)]
        assert {r.alert_id for r in resolved} < ids
        [hook] = [r for r in resolved if r.sink == "webhook"]
        assert (hook.body["event"], hook.body["alert"]["status"]) == ("alert.resolved", "resolved")

    text = logs.getvalue()
    assert '"event": "alert_opened"' in text and '"level": "error"' in text
    assert HOOK_TOKEN not in text and SLACK_TOKEN not in text


def test_tally_reconcile_delivers_inline_once_each(
    ledger_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _append(ledger_url, ("o1", "0.8"))
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    monkeypatch.setenv("TALLY_ALERT_WEBHOOK_URL", f"{receiver.url}/hooks/{HOOK_TOKEN}")
    assert main(["reconcile"]) == 0
    assert main(["reconcile"]) == 0
    [alert_id] = _alert_ids(ledger_url)
    assert receiver.delivered("webhook") == {(alert_id, 1): 1}
    assert receiver.delivered("slack") == {}
    err = capsys.readouterr().err
    assert HOOK_TOKEN not in err and "alert_opened" in err


def test_slack_payload_shape() -> None:
    note = Notification(
        7,
        2,
        "updated",
        {
            "id": 7, "rule": "order", "source": "aurpay", "subject_id": "o1", "check": "",
            "currency": "BTC", "expected": "0.9", "actual": "0.7", "difference": "0.2",
            "tolerance": "0.00000001", "status": "open", "detail": "amount 1 − fee 0.1 ≠ 0.7",
        },
    )  # fmt: skip
    body = slack_body(note)
    assert set(body) == {"text", "blocks"}
    assert "tally alert #7 updated" in body["text"] and "o1" in body["text"]
    section, numbers, context = body["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}}
    assert numbers["type"] == "section" and numbers["text"]["type"] == "mrkdwn"
    assert all(v in numbers["text"]["text"] for v in ("`0.9`", "`0.7`", "`0.2`", "`0.00000001`"))
    assert context["type"] == "context"
    assert context["elements"] == [
        {
            "type": "mrkdwn",
            "text": "alert id 7 · revision 2 · status open · severity — · `tally alerts show 7`",
        }
    ]
    assert webhook_body(note) == {
        "id": 7,
        "revision": 2,
        "event": "alert.updated",
        "alert": dict(note.alert),
        "show": "tally alerts show 7",
    }


def test_sinks_carry_the_incidents_evidence_and_the_show_command() -> None:
    checks = [
        {"check": "", "detail": "amount 1 − fee 0.1 ≠ obtained 0.8"},
        {"check": "obtained", "detail": "order obtained 0.8 ≠ transaction obtained 0.9"},
    ]
    alert = {
        "id": 3, "rule": "order", "source": "aurpay", "subject_id": "o1", "check": "",
        "currency": "BTC", "expected": "0.9", "actual": "0.8", "difference": "0.1",
        "tolerance": "0.00000001", "status": "open", "detail": "both", "severity": "warn",
        "evidence": checks, "related": ["tx-o1"],
    }  # fmt: skip
    note = Notification(3, 1, "opened", alert)
    text = slack_body(note)["blocks"][1]["text"]["text"]
    assert all(f"• {c['detail']}" in text for c in checks) and "`tx-o1`" in text
    assert "severity warn" in slack_body(note)["blocks"][2]["elements"][0]["text"]
    body = webhook_body(note)
    assert body["alert"]["evidence"] == checks and body["show"] == "tally alerts show 3"


@pytest.mark.parametrize(
    ("answer", "error", "retry_after"),
    [
        (httpx.Response(404), DeliveryRefused, None),
        (httpx.Response(503, headers={"Retry-After": "7"}), DeliveryFailed, 7.0),
        (httpx.Response(429), DeliveryFailed, None),
        (httpx.ConnectError(f"cannot reach hooks/{HOOK_TOKEN}"), DeliveryFailed, None),
    ],
)
def test_sink_errors_say_what_to_do_and_never_the_url(
    answer: httpx.Response | Exception, error: type[Exception], retry_after: float | None
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = httpx.Client(transport=httpx.MockTransport(handle))
    sink = HttpSink(
        "webhook", SecretStr(f"https://h.example/hooks/{HOOK_TOKEN}"), client, webhook_body
    )
    note = Notification(1, 1, "opened", {"id": 1})
    with pytest.raises(error) as raised:
        sink.send(note)
    assert getattr(raised.value, "retry_after", None) == retry_after
    assert HOOK_TOKEN not in str(raised.value) and HOOK_TOKEN not in repr(sink)


def test_a_lost_or_failed_delivery_is_due_again_later(ledger_url: str) -> None:
    _append(ledger_url, ("o1", "0.8"))
    store = open_ledger(ledger_url, PrecisionTable())
    try:
        settings = load_settings(database_url=ledger_url)
        ctx = ReconcileContext.from_settings(store, settings, lambda: OBSERVED, PLANS)
        [note] = reconcile(ctx).notifications
        outbox = Outbox(store.engine)
        now = OBSERVED
        assert deliveries_due([note], ["webhook"], outbox, now) == [(note.alert_id, 1, "webhook")]
        assert deliveries_due([], ["webhook"], outbox, now) == []  # in flight: not yet
        later = now + REDELIVER_AFTER + timedelta(seconds=1)
        assert deliveries_due([], ["webhook"], outbox, later) == [(note.alert_id, 1, "webhook")]
        outbox.record(note.alert_id, 1, "webhook", later, "alert sink webhook: HTTP 500")
        assert deliveries_due([], ["webhook"], outbox, later) == []  # just attempted
        outbox.record(note.alert_id, 1, "webhook", later, None)
        assert outbox.delivered(note.alert_id, 1, "webhook")
        assert deliveries_due([], ["webhook"], outbox, later + timedelta(days=1)) == []
        assert outbox.announcement(note.alert_id, 1) == note
    finally:
        store.close()
