"""The console on the edge: its own server (``tally console``) or mounted beside the callbacks
(``tally run``), with the console token added to the log redaction."""

from __future__ import annotations

from ledger.storage.store import LedgerStore
from worker.config import Settings
from worker.console.app import Console
from worker.console.settings import ConsoleSettings, load_console_settings
from worker.edge import EdgeLimits, WSGIApp
from worker.logging import configure_logging, get_logger

log = get_logger(__name__)

MOUNT = "/console"
# People, not gateways: a few threads, small requests (forms), patient with a slow page.
CONSOLE_LIMITS = EdgeLimits(threads=4, connection_limit=100, max_body_bytes=256 * 1024)


def redact_token(settings: Settings, access: ConsoleSettings) -> None:
    """Log with the console token among the secrets never written."""
    secrets = settings.secret_values() + ([access.token] if access.token else [])
    configure_logging(settings.tally_log_level, settings.tally_log_format, secrets)


def console_mounts(settings: Settings, store: LedgerStore) -> dict[str, WSGIApp]:
    """``{"/console": app}`` when the console is configured (a token, or reading left open),
    else nothing: ``tally run`` serves it only when someone could open it."""
    access = load_console_settings()
    if not access.enabled:
        log.info("console_off", reason="set TALLY_CONSOLE_TOKEN to serve /console")
        return {}
    redact_token(settings, access)
    return {MOUNT: Console(settings, access, store)}
