"""``tally console [--host H] [--port N]``: serve the operations console until SIGTERM/SIGINT.

Overview, alerts inbox (acknowledge, resolve), ledger (balances, chart, journal, the story of one
order), runs and quarantine. Signing in takes TALLY_CONSOLE_TOKEN; reading without it only with
TALLY_CONSOLE_READ_ONLY_OPEN=true.
"""

from __future__ import annotations

import argparse
import threading

from ledger.storage.open import open_ledger
from worker.app.commands import MAX_PORT, Subparsers, int_range
from worker.config import Settings
from worker.console import Console
from worker.console.serving import CONSOLE_LIMITS, redact_token
from worker.console.settings import load_console_settings, require_enabled
from worker.edge import serve
from worker.logging import get_logger
from worker.schedule.scheduler import stop_on_signals

log = get_logger(__name__)


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "console", help="serve the web console: sources, alerts, ledger, runs"
    )
    parser.add_argument("--host", default=None, help="bind address (TALLY_CONSOLE_HOST)")
    parser.add_argument(
        "--port", type=int_range(0, MAX_PORT), default=None, help="port (TALLY_CONSOLE_PORT)"
    )
    parser.set_defaults(handler=run_console)


def run_console(
    args: argparse.Namespace, settings: Settings, stop: threading.Event | None = None
) -> int:
    access = require_enabled(load_console_settings())
    redact_token(settings, access)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        stop_on_signals(stop)
    store = open_ledger(
        settings.database_url, settings.precision_table(), auto_upgrade=not settings.is_postgres
    )
    try:
        server = serve(
            Console(settings, access, store),
            host=args.host or access.tally_console_host,
            port=access.tally_console_port if args.port is None else args.port,
            name="console",
            limits=CONSOLE_LIMITS,
        )
        log.info(
            "console_started",
            url=server.url,
            sign_in=access.token is not None,
            read_only_open=access.tally_console_read_only_open,
        )
        stop.wait()
        log.info("console_stopping")
        server.stop()
    finally:
        store.close()
    log.info("console_stopped")
    return 0
