"""A ledger fed from a running Aurpay sandbox (planted mismatches, a refund among them, a few
invalid records), and the console served over it on the edge: shared by the console's
integration and browser tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from ledger.storage.open import open_ledger
from tests.helpers.sandbox import run_sync, sandbox_settings
from worker.app.session import worker_session
from worker.config import Settings
from worker.console import Console, load_console_settings
from worker.edge import EdgeServer, WSGIApp, mount, serve

TOKEN = "console-token-0123456789abcdef"


@dataclass(frozen=True)
class Fed:
    url: str
    settings: Settings
    sandbox: Any


def feed_ledger(url: str, sandbox_factory: Callable[..., Any], **overrides: Any) -> Fed:
    """A sandbox world synced (full scan, then reconcile) into ``url``; ``overrides`` are
    settings the console is given afterwards (not the sync's)."""
    sandbox = sandbox_factory(
        seed=11, orders=60, mismatch_rate=0.2, dust_rate=0.3, rate_invalid_record=0.05
    )
    with worker_session(sandbox_settings(sandbox, url)) as session:
        run_sync(session)
    return Fed(url, sandbox_settings(sandbox, url, **overrides), sandbox)


@contextmanager
def console_server(
    fed: Fed, *, prefix: str = "", **access: Any
) -> Iterator[tuple[EdgeServer, Console]]:
    """The console over ``fed``'s ledger on a real edge server (at ``prefix`` when given)."""
    store = open_ledger(fed.url, fed.settings.precision_table())
    console = Console(fed.settings, load_console_settings(**access), store)
    app: WSGIApp = mount({prefix: console}) if prefix else console
    server = serve(app, host="127.0.0.1", port=0, name="console-test")
    try:
        yield server, console
    finally:
        server.stop(drain_seconds=1)
        store.close()


def signed_in(client: httpx.Client, token: str = TOKEN, root: str = "") -> str:
    """Sign ``client`` in; return the CSRF token its forms carry."""
    answer = client.post(f"{root}/login", data={"token": token, "next": "/alerts"})
    assert answer.status_code == 303, answer.text
    page = client.get(f"{root}/alerts").text
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]
