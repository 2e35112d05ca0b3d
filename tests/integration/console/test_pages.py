"""The console's pages over a sandbox-fed ledger (SQLite and PostgreSQL): overview, alerts
inbox and actions, balances and their chart, journal search, one order's story, runs and
quarantine; mounted under a prefix, and in ``tally run``."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from markupsafe import escape

from ledger.alerts.state import RESOLVED
from tests.helpers.processes import TallyProcess
from tests.helpers.sandbox import sandbox_env
from tests.integration.console.feed import TOKEN, console_server, feed_ledger, signed_in
from worker.console.chart import balance_chart

BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _refund_alert(client: httpx.Client) -> dict[str, Any]:
    alerts = client.get("/alerts", headers=BEARER).json()["alerts"]
    return next(a for a in alerts if a["rule"] == "refund")


def test_every_page_over_a_sandbox_fed_ledger(
    ledger_url: str, sandbox_factory: Callable[..., Any]
) -> None:
    fed = feed_ledger(ledger_url, sandbox_factory)
    world = fed.sandbox.world
    with (
        console_server(fed, tally_console_token=TOKEN) as (server, _),
        httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as client,
    ):
        signed_in(client)
        overview = client.get("/").text
        assert 'class="health ok">ok<' in overview and ">aurpay</a>" in overview
        head = client.get("/", headers=BEARER).json()
        assert head["chain"]["head_seq"] > 0 and head["sources"][0]["health"] == "ok"
        rules = {g["rule"] for g in head["incidents"]}
        assert rules == {rule for rule, _ in world.expected_mismatches()}

        alerts = client.get("/alerts", headers=BEARER).json()["alerts"]
        found = {(a["rule"], a["subject_id"]) for a in alerts}
        assert found == world.expected_mismatches()
        only = client.get("/alerts?rule=refund", headers=BEARER).json()["alerts"]
        assert only and {a["rule"] for a in only} == {"refund"}
        none = client.get("/alerts?since=2999-01-01", headers=BEARER).json()["alerts"]
        assert none == []
        assert client.get("/alerts?status=bogus").status_code == 400

        refund = _refund_alert(client)
        detail = client.get(f"/alerts/{refund['id']}").text
        assert refund["subject_id"] in detail and "Snapshots behind it" in detail
        assert f"#{refund['snapshot_seqs'][0]} aurpay" in detail  # the linked snapshot
        postings = detail[detail.index('id="postings"') :]
        assert f"aurpay:refund:{refund['subject_id']}:v1" in postings
        assert f"aurpay:order:{refund['subject_id']}:v1" in postings

        tx = next(a for a in alerts if a["rule"] == "transaction")
        linked = client.get(f"/story/aurpay/{tx['subject_id']}").text
        assert f"transaction {tx['subject_id']} v1 received" in linked
        (order_id,) = tx["related"]  # the transaction's order, one step away
        assert f"order {order_id} v1 received" in linked

        story = client.get(f"/story/aurpay/{refund['subject_id']}").text
        moments = re.findall(r'<li class="moment (\w+)">', story)
        assert {"version", "posting", "alert"} <= set(moments)
        assert f"refund {refund['subject_id']} v1 received" in story
        assert f"journal entry aurpay:refund:{refund['subject_id']}:v1" in story
        assert client.get("/story/nowhere/x").status_code == 404

        ledger = client.get("/ledger").text
        assert '<svg class="chart"' in ledger and '<path d="M' in ledger
        balances = client.get("/ledger", headers=BEARER).json()["balances"]
        assets = [b for b in balances if b["account"].startswith("assets:aurpay:")]
        assert assets and all(Decimal(b["balance"]) != 0 for b in assets)
        first = balances[0]  # the chart shows the first pair unless one is chosen
        titles = re.findall(r"<title>(\d{4}-\d\d-\d\d): ([^<]+)</title>", ledger)
        assert titles[-1][1] == first["balance"]  # the line ends at today's balance
        chosen = client.get(
            "/ledger", params={"account": assets[-1]["account"], "currency": assets[-1]["currency"]}
        ).text
        assert re.findall(r"<title>[^<]*: ([^<]+)</title>", chosen)[-1] == assets[-1]["balance"]
        before = client.get("/ledger?at=2000-01-01", headers=BEARER).json()
        assert before == {"at": "2000-01-01", "balances": []}
        assert client.get("/ledger?at=yesterday").status_code == 400

        search = client.get("/journal", params={"q": refund["subject_id"]})
        assert f"aurpay:refund:{refund['subject_id']}:v1" in search.text
        assert (
            client.get("/journal", params={"q": "no-such-thing-anywhere"}, headers=BEARER).json()[
                "total"
            ]
            == 0
        )

        runs = client.get("/runs", headers=BEARER).json()["runs"]["aurpay"]
        assert runs[0]["mode"] == "full" and runs[0]["pages"] > 0 and runs[0]["objects"] > 0
        assert "finished" in client.get("/runs").text

        quarantined = client.get("/quarantine", headers=BEARER).json()["quarantined"]
        assert len(quarantined) == len(world.invalid_records()) > 0
        assert all(q["reason"] and q["raw"] for q in quarantined)
        page = client.get("/quarantine").text
        assert "raw JSON" in page and str(escape(quarantined[0]["reason"])) in page

        wrong = client.put("/alerts", headers=BEARER)
        assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"


def test_resolving_from_the_page_records_how(
    sqlite_url: str, sandbox_factory: Callable[..., Any]
) -> None:
    fed = feed_ledger(sqlite_url, sandbox_factory)
    with (
        console_server(fed, tally_console_token=TOKEN) as (server, console),
        httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as client,
    ):
        csrf = signed_in(client)
        alerts = client.get("/alerts", headers=BEARER).json()["alerts"]
        first, second = alerts[0]["id"], alerts[1]["id"]
        bad = client.post(
            f"/alerts/{first}/resolve",
            data={"note": "n", "resolution": "write-off", "account": "", "csrf": csrf},
        )
        assert bad.status_code == 400 and "write-off needs an account" in bad.text
        form = {"note": "written off by Ana", "resolution": "write-off", "csrf": csrf}
        done = client.post(f"/alerts/{first}/resolve", data={**form, "account": "expenses:recon"})
        assert done.status_code == 303
        alert = console.alerts.get(first)
        assert (alert.status, alert.resolution, alert.resolution_account) == (
            RESOLVED,
            "write-off",
            "expenses:recon",
        )
        explained = {"note": "a known fee change", "csrf": csrf}
        assert client.post(f"/alerts/{second}/resolve", data=explained).status_code == 303
        assert console.alerts.get(second).resolution == "explained"
        again = client.post(f"/alerts/{second}/ack", data={"note": "late", "csrf": csrf})
        assert again.status_code == 409 and "already resolved" in again.text
        history = client.get(f"/alerts/{first}", headers=BEARER).json()["history"]
        assert [e["kind"] for e in history] == ["opened", "resolved_by_person"]
        assert client.get("/alerts/999999").status_code == 404


def test_mounted_under_a_prefix_every_link_stays_inside(
    sqlite_url: str, sandbox_factory: Callable[..., Any]
) -> None:
    fed = feed_ledger(sqlite_url, sandbox_factory)
    with (
        console_server(fed, prefix="/console", tally_console_token=TOKEN) as (server, _),
        httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as client,
    ):
        first = client.get("/console/alerts")
        assert first.headers["location"] == "/console/login?next=%2Falerts"
        answer = client.post("/console/login", data={"token": TOKEN, "next": "/alerts"})
        assert answer.headers["location"] == "/console/alerts"
        assert "Path=/console" in answer.headers["set-cookie"]
        page = client.get("/console/alerts").text
        links = re.findall(r'(?:href|action)="([^"]+)"', page)
        assert links and all(link.startswith("/console/") for link in links)
        assert client.get("/console/static/console.css").status_code == 200


def test_tally_run_serves_the_console_beside_the_callbacks(
    sqlite_url: str, sandbox_factory: Callable[..., Any], tmp_path: Any
) -> None:
    sandbox = sandbox_factory(seed=3, orders=10)
    env = sandbox_env(
        sandbox,
        sqlite_url,
        tally_console_token=TOKEN,
        tally_callback_port=0,
        tally_metrics_port=None,
    )
    proc = TallyProcess(["run"], env, tmp_path / "run.log")
    try:
        proc.wait_for_event("tally_started", timeout=60)
        url = next(e["url"] for e in proc.events() if e.get("event") == "edge_listening")
        with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as client:
            assert client.get("/console/").headers["location"].startswith("/console/login")
            assert client.get("/console/", headers=BEARER).status_code == 200
            assert client.get("/healthz").status_code == 200  # the callbacks' own routes stay
        assert TOKEN not in proc.log_path.read_text()
    finally:
        proc.stop()


def test_the_chart_is_a_step_line_with_exact_labels() -> None:
    points = [
        (date(2025, 1, 1), Decimal("1.5")),
        (date(2025, 1, 3), Decimal("-0.25")),
        (date(2025, 1, 5), Decimal("0.000000000000000001")),
    ]
    svg = str(balance_chart(points, "assets <x> in BTC"))
    assert svg.startswith('<svg class="chart"') and svg.endswith("</svg>")
    assert "assets &lt;x&gt; in BTC" in svg and "<x>" not in svg
    assert ">1.5<" in svg and ">-0.25<" in svg  # the axis shows the exact extremes
    assert "2025-01-05: 0.000000000000000001" in svg
    path = re.search(r'<path d="([^"]+)"', svg)
    assert path is not None and path.group(1).startswith("M110.0,")
    assert [step[0] for step in path.group(1).split()] == ["M", "H", "V", "H", "V"]
    assert "no postings" in str(balance_chart([], "empty")).lower()
    single = str(balance_chart([(date(2025, 1, 1), Decimal(5))], "one"))
    assert "H" in re.search(r'<path d="([^"]+)"', single).group(1)  # type: ignore[union-attr]
