"""Where announced alert changes go: the log (always, at error level), a generic JSON webhook,
and a Slack incoming webhook; and ``deliver``, which sends one revision to one sink at most once.

    TallyError
    └── DeliveryError         a sink did not take the notification
        ├── DeliveryFailed    timeout, connection error, HTTP 408/429/5xx: retry with backoff
        └── DeliveryRefused   any other non-2xx: retrying will not help (check the URL)

Webhook URLs carry tokens, so a URL never appears in a log line, a repr or an error message:
errors say which sink and what status, nothing more.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from ledger import jsonx
from ledger.alerts.outbox import Outbox
from ledger.alerts.store import Notification
from worker.alerts.views import show_command
from worker.config import Settings
from worker.errors import TallyError
from worker.gateways.base import parse_retry_after
from worker.logging import get_logger

log = get_logger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
LOG, WEBHOOK, SLACK = "log", "webhook", "slack"
MAX_SLACK_CHECKS = 5  # a message stays readable; `tally alerts show` has them all
STATUS_EMOJI = {
    "opened": ":rotating_light:",
    "updated": ":warning:",
    "resolved": ":white_check_mark:",
}
# A delivery not done after this long (its message retried out, or was lost) is sent again by
# the next reconcile run, for up to a week.
REDELIVER_AFTER = timedelta(minutes=15)
REDELIVER_HORIZON = timedelta(days=7)


class DeliveryError(TallyError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryFailed(DeliveryError):
    """Worth retrying later."""


class DeliveryRefused(DeliveryError):
    """The receiver refused the request itself."""


class Sink(Protocol):
    name: str

    def send(self, note: Notification) -> None:
        """Deliver one announcement or raise ``DeliveryError``."""
        ...


class LogSink:
    """Every announcement as one error-level log line (never fails)."""

    name = LOG

    def send(self, note: Notification) -> None:
        a = note.alert
        log.error(
            f"alert_{note.event}",
            alert_id=note.alert_id,
            revision=note.revision,
            **{k: a.get(k) for k in ("rule", "source", "subject_id", "check", "currency")},
            **{k: a.get(k) for k in ("expected", "actual", "difference", "tolerance", "status")},
            severity=a.get("severity"),
            related=a.get("related"),
            checks=[c.get("check") or "=" for c in a.get("evidence") or []],
            detail=a.get("detail"),
            show=show_command(note.alert_id),
        )


def webhook_body(note: Notification) -> dict[str, Any]:
    """The generic webhook's JSON: receivers dedupe on (id, revision). ``alert`` carries the
    incident's evidence (every failing check), related subjects and severity; ``show`` is the
    command that prints it in full with its history."""
    return {
        "id": note.alert_id,
        "revision": note.revision,
        "event": f"alert.{note.event}",
        "alert": dict(note.alert),
        "show": show_command(note.alert_id),
    }


def slack_body(note: Notification) -> dict[str, Any]:
    """Slack incoming-webhook format: ``text`` (fallback) plus blocks with the numbers."""
    a = note.alert
    title = (
        f"{STATUS_EMOJI.get(note.event, '')} tally alert #{note.alert_id} {note.event}: "
        f"{a['rule']} on {a['source']} {a['subject_id']}"
    ).strip()
    check = f" ({a['check']})" if a.get("check") else ""
    numbers = (
        f"*{a['rule']}*{check} · `{a['subject_id']}` · {a['currency'] or '—'}\n"
        f"expected `{a['expected']}` · actual `{a['actual']}` · "
        f"difference `{a['difference']}` (tolerance `{a['tolerance']}`)"
    )
    evidence = a.get("evidence") or []  # every failing check of the incident, one per line
    numbers += "".join(f"\n• {c.get('detail', '')}" for c in evidence[:MAX_SLACK_CHECKS])
    if len(evidence) > MAX_SLACK_CHECKS:
        numbers += f"\n• … {len(evidence) - MAX_SLACK_CHECKS} more"
    if not evidence:
        numbers += f"\n{a['detail']}"
    if a.get("related"):
        numbers += f"\nrelated: {', '.join(f'`{r}`' for r in a['related'])}"
    context = (
        f"alert id {note.alert_id} · revision {note.revision} · status {a['status']} · "
        f"severity {a.get('severity', '—')} · `{show_command(note.alert_id)}`"
    )
    return {
        "text": title,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": title}},
            {"type": "section", "text": {"type": "mrkdwn", "text": numbers}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


class HttpSink:
    """POST a JSON body built by ``render`` to a secret URL through the shared client."""

    def __init__(
        self,
        name: str,
        url: SecretStr,
        client: httpx.Client,
        render: Any,
    ) -> None:
        self.name = name
        self._url = url
        self._client = client
        self._render = render

    def __repr__(self) -> str:
        return f"HttpSink({self.name!r}, url='***')"

    def send(self, note: Notification) -> None:
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": f"tally-alert-{note.alert_id}-r{note.revision}",
            "X-Tally-Alert-Id": str(note.alert_id),
            "X-Tally-Alert-Revision": str(note.revision),
        }
        body = jsonx.dumps(self._render(note))
        try:
            url = self._url.get_secret_value()
            response = self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise DeliveryFailed(f"alert sink {self.name}: timed out") from None
        except httpx.HTTPError as exc:  # the message may quote the URL: keep only the kind
            raise DeliveryFailed(f"alert sink {self.name}: {type(exc).__name__}") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        message = f"alert sink {self.name}: HTTP {status}"
        if status in (408, 429) or status >= 500:
            hint = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
            raise DeliveryFailed(message, retry_after=hint)
        raise DeliveryRefused(message)


def new_http_client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT, follow_redirects=False)


def http_sinks(settings: Settings, client: httpx.Client) -> dict[str, Sink]:
    """The configured HTTP sinks by name (the log sink is always on and not listed)."""
    sinks: dict[str, Sink] = {}
    if settings.tally_alert_webhook_url is not None:
        sinks[WEBHOOK] = HttpSink(WEBHOOK, settings.tally_alert_webhook_url, client, webhook_body)
    if settings.tally_slack_webhook_url is not None:
        sinks[SLACK] = HttpSink(SLACK, settings.tally_slack_webhook_url, client, slack_body)
    return sinks


def deliver(outbox: Outbox, sink: Sink, alert_id: int, revision: int, now: datetime) -> bool:
    """Send revision ``revision`` of alert ``alert_id`` to ``sink`` unless it already got it.

    True when sent now. A failure is recorded and re-raised (the caller retries); a success is
    recorded per (alert, revision, sink), so a retried message never sends it twice.
    """
    if outbox.delivered(alert_id, revision, sink.name):
        return False
    note = outbox.announcement(alert_id, revision)
    if note is None:
        log.warning("alert_delivery_unknown", alert_id=alert_id, revision=revision, sink=sink.name)
        return False
    try:
        sink.send(note)
    except DeliveryError as exc:
        outbox.record(alert_id, revision, sink.name, now, str(exc))
        raise
    outbox.record(alert_id, revision, sink.name, now, None)
    log.info("alert_delivered", alert_id=alert_id, revision=revision, sink=sink.name)
    return True


def deliveries_due(
    notifications: Iterable[Notification], sink_names: Iterable[str], outbox: Outbox, now: datetime
) -> list[tuple[int, int, str]]:
    """(alert_id, revision, sink) to send: each new notification to each sink, plus older
    announcements a sink still has not received (see ``REDELIVER_AFTER``)."""
    names = sorted(set(sink_names))
    due = [(n.alert_id, n.revision, name) for n in notifications for name in names]
    if names:
        pending = outbox.undelivered(
            names, now, quiet_for=REDELIVER_AFTER, horizon=REDELIVER_HORIZON
        )
        due += [(p.alert_id, p.revision, p.sink) for p in pending]
    return list(dict.fromkeys(due))


def deliver_inline(
    outbox: Outbox,
    sinks: Mapping[str, Sink],
    due: Iterable[tuple[int, int, str]],
    now: Callable[[], datetime],
    *,
    attempts: int = 3,
    backoff: float = 0.5,
) -> int:
    """Deliver ``due`` in this process (``tally reconcile``), a few tries each with a short
    backoff; returns how many failed (left for the next run's redelivery)."""
    failed = 0
    for alert_id, revision, name in due:
        for attempt in range(attempts):
            try:
                deliver(outbox, sinks[name], alert_id, revision, now())
                break
            except DeliveryRefused:
                failed += 1
                break
            except DeliveryFailed:
                if attempt + 1 == attempts:
                    failed += 1
                else:
                    time.sleep(backoff * 2**attempt)
    return failed
