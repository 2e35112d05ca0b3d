"""Who may read and write the console: the token signs a session in (cookie + CSRF) or is sent
as a Bearer token; reading without it only when left open on purpose; writes without it get
401/403; no secret ever appears on a page."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ledger.alerts.state import ACKNOWLEDGED, OPEN
from tests.integration.console.feed import TOKEN, Fed, console_server, feed_ledger, signed_in
from worker.console import load_console_settings
from worker.errors import ConfigError
from worker.gateways.aurpay.settings import SANDBOX_API_KEY

WEBHOOK = "https://hooks.example.com/services/T000/B000/hook-secret-4242"
SECRETS = {
    "aurpay_callback_secret": "callback-secret-9f8e7d6c",
    "aurpay_callback_token": "callback-token-1a2b3c4d",
    "tally_alert_webhook_url": WEBHOOK,
}


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    from sandbox.aurpay import SandboxConfig, start_sandbox

    started: list[Any] = []

    def factory(**config: Any) -> Any:
        started.append(start_sandbox(SandboxConfig(**config)))
        return started[-1]

    url = f"sqlite:///{tmp_path_factory.mktemp('console')}/ledger.db"
    try:
        yield feed_ledger(url, factory, **SECRETS)
    finally:
        for sandbox in started:
            sandbox.stop()


@pytest.fixture
def client_for(fed: Fed) -> Iterator[Callable[..., httpx.Client]]:
    opened: list[Any] = []

    def make(**access: Any) -> httpx.Client:
        context = console_server(fed, **access)
        server, _ = context.__enter__()
        opened.append(context)
        client = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
        opened.append(client)
        return client

    yield make
    for thing in reversed(opened):
        if isinstance(thing, httpx.Client):
            thing.close()
        else:
            thing.__exit__(None, None, None)


def _open_alert(client: httpx.Client, auth: dict[str, str]) -> dict[str, Any]:
    alerts = client.get("/alerts", headers=auth).json()["alerts"]
    return next(a for a in alerts if a["status"] == OPEN)


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_without_the_token_reads_go_to_sign_in_and_writes_get_401(
    client_for: Callable[..., httpx.Client],
) -> None:
    client = client_for(tally_console_token=TOKEN)
    page = client.get("/alerts")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Falerts"
    api = client.get("/alerts", headers={"Accept": "application/json"})
    assert api.status_code == 401 and api.json()["ok"] is False
    write = client.post("/alerts/1/ack", data={"note": "me"})
    assert write.status_code == 401
    wrong = client.post("/alerts/1/ack", data={"note": "me"}, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    basic = client.get("/", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert basic.status_code == 401
    assert client.post("/verify").status_code == 401


def test_a_bearer_client_reads_json_and_writes(
    client_for: Callable[..., httpx.Client], fed: Fed
) -> None:
    client = client_for(tally_console_token=TOKEN)
    overview = client.get("/", headers=BEARER)
    assert overview.status_code == 200
    assert [s["source"] for s in overview.json()["sources"]] == ["aurpay"]
    alert = _open_alert(client, BEARER)
    done = client.post(f"/alerts/{alert['id']}/ack", data={"note": "api: on it"}, headers=BEARER)
    assert done.status_code == 200, done.text
    assert done.json()["alert"]["status"] == ACKNOWLEDGED
    assert done.json()["alert"]["note"] == "api: on it"
    empty = client.post(f"/alerts/{alert['id']}/ack", data={"note": " "}, headers=BEARER)
    assert empty.status_code == 400 and "note" in empty.json()["error"]
    other = next(
        a for a in client.get("/alerts", headers=BEARER).json()["alerts"] if a["status"] == OPEN
    )
    body = {"note": "api: explained", "resolution": "explained"}
    done = client.post(f"/alerts/{other['id']}/resolve", json=body, headers=BEARER)
    assert done.status_code == 200 and done.json()["alert"]["resolution"] == "explained"
    for bad in ('{"note": 1}', "[1]", "{not json"):
        answer = client.post(
            f"/alerts/{other['id']}/ack",
            content=bad,
            headers={**BEARER, "Content-Type": "application/json"},
        )
        assert answer.status_code == 400, bad
    xml = client.post(
        "/alerts/1/ack", content="<a/>", headers={**BEARER, "Content-Type": "text/xml"}
    )
    assert xml.status_code == 415


def test_a_session_signs_in_and_its_forms_need_the_csrf_token(
    client_for: Callable[..., httpx.Client],
) -> None:
    client = client_for(tally_console_token=TOKEN)
    refused = client.post("/login", data={"token": "not-the-token-at-all", "next": "/"})
    assert refused.status_code == 401 and "not the console token" in refused.text
    assert "set-cookie" not in refused.headers
    answer = client.post("/login", data={"token": TOKEN, "next": "/alerts"})
    cookie = answer.headers["set-cookie"]
    assert answer.status_code == 303 and answer.headers["location"] == "/alerts"
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    csrf = signed_in(client)
    alert = _open_alert(client, {"Accept": "application/json"})
    forged = client.post(f"/alerts/{alert['id']}/ack", data={"note": "forged"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    wrong = client.post(f"/alerts/{alert['id']}/ack", data={"note": "x", "csrf": csrf[:-1] + "0"})
    assert wrong.status_code == 403
    done = client.post(f"/alerts/{alert['id']}/ack", data={"note": "finance: Ana", "csrf": csrf})
    assert done.status_code == 303 and done.headers["location"] == f"/alerts/{alert['id']}"
    page = client.get(done.headers["location"]).text
    assert 'id="alert-status">acknowledged<' in page and "finance: Ana" in page
    out = client.post("/logout", data={"csrf": csrf})
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]


def test_a_forged_or_expired_cookie_is_nobody(client_for: Callable[..., httpx.Client]) -> None:
    client = client_for(tally_console_token=TOKEN)
    signed_in(client)
    value = client.cookies["tally_console"]
    expires, session, signature = value.split(".")
    client.cookies.clear()
    for forged in (f"{int(expires) + 99}.{session}.{signature}", f"1.{session}.{signature}"):
        client.cookies.set("tally_console", forged)
        assert client.get("/alerts").status_code == 303
        client.cookies.clear()
    other = client_for(tally_console_token=TOKEN.upper())  # another token: another key
    other.cookies.set("tally_console", value)
    assert other.get("/alerts").status_code == 303


def test_sign_in_never_redirects_off_the_console(client_for: Callable[..., httpx.Client]) -> None:
    client = client_for(tally_console_token=TOKEN)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        answer = client.post("/login", data={"token": TOKEN, "next": target})
        assert answer.headers["location"] == "/"


def test_read_only_open_lets_anyone_read_but_not_write(
    client_for: Callable[..., httpx.Client],
) -> None:
    client = client_for(tally_console_read_only_open=True)
    page = client.get("/alerts")
    assert page.status_code == 200 and "Sign in to acknowledge" not in page.text
    alert = _open_alert(client, {"Accept": "application/json"})
    detail = client.get(f"/alerts/{alert['id']}").text
    assert "Sign in to acknowledge or resolve" in detail and 'id="ack-form"' not in detail
    assert client.post(f"/alerts/{alert['id']}/ack", data={"note": "x"}).status_code == 401
    assert client.post("/login", data={"token": TOKEN}).status_code == 401  # no token to match


def test_pages_carry_headers_that_keep_them_private(
    client_for: Callable[..., httpx.Client],
) -> None:
    client = client_for(tally_console_token=TOKEN)
    signed_in(client)
    page = client.get("/")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"


def test_no_secret_appears_on_any_page(client_for: Callable[..., httpx.Client], fed: Fed) -> None:
    client = client_for(tally_console_token=TOKEN, tally_console_read_only_open=True)
    login = client.get("/login").text
    signed_in(client)
    alert = _open_alert(client, {"Accept": "application/json"})
    paths = [
        "/",
        "/alerts?status=all",
        f"/alerts/{alert['id']}",
        f"/story/aurpay/{alert['subject_id']}",
        "/ledger",
        "/journal",
        "/runs",
        "/quarantine",
        "/no-such-page",
    ]
    bodies = [login] + [client.get(p).text for p in paths]
    bodies += [client.get(p, headers=BEARER).text for p in paths]
    secrets = [TOKEN, *fed.settings.secret_values(), *SECRETS.values()]
    assert SANDBOX_API_KEY in secrets  # the gateway's own credential among them
    for body in bodies:
        for secret in secrets:
            assert secret not in body


def test_settings_need_a_token_or_an_explicit_open_switch(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="TALLY_CONSOLE_TOKEN: must be at least 16"):
        load_console_settings(tally_console_token="short")
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    done = subprocess.run(
        [sys.executable, "-m", "worker.app.cli", "console", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tally: invalid setting TALLY_CONSOLE_TOKEN")
