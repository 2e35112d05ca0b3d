"""The console in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven
by selenium) against ``tally console`` on a sandbox-fed ledger: sign in, the open alerts, one
alert acknowledged with a note (and seen acknowledged from the CLI), the story of a refunded
order, the balance chart; a screenshot of each page is kept under ``tests/artifacts/browser``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.helpers.processes import TallyProcess
from tests.helpers.sandbox import sandbox_env
from tests.integration.console.feed import TOKEN, feed_ledger

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"


def _binary(*names: str) -> str:
    found = next((path for name in names if (path := shutil.which(name))), None)
    if found is None:  # CI installs them (.ci/run): never skip, say how
        pytest.fail(f"{names[0]} is not installed: apt-get install -y chromium chromium-driver")
    return found


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1100")
    driver = webdriver.Chrome(options=options, service=Service(_binary("chromedriver")))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def console(
    sqlite_url: str, sandbox_factory: Callable[..., Any], tmp_path: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """``tally console`` over a sandbox-fed ledger: its URL and its environment."""
    fed = feed_ledger(sqlite_url, sandbox_factory)
    env = sandbox_env(fed.sandbox, sqlite_url, tally_console_token=TOKEN, tally_console_port=0)
    proc = TallyProcess(["console"], env, tmp_path / "console.log")
    try:
        proc.wait_for_event("console_started", timeout=60)
        url = next(e["url"] for e in proc.events() if e.get("event") == "console_started")
        yield url, env
    finally:
        assert proc.stop() == 0
        assert TOKEN not in proc.log_path.read_text()


def _shot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _follow(driver: WebDriver, element: WebElement) -> None:
    """Click a link or submit button and wait for the next page: ``click()`` returns before the
    navigation it starts has finished, so reading the page at once would read the old one."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(page))


def _cli_alerts(env: dict[str, str], tmp_path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "worker.app.cli", "alerts", "--format", "json"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=True,
    )
    return list(json.loads(done.stdout))


def test_finance_works_the_inbox_in_a_real_browser(
    browser: WebDriver, console: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = console
    browser.get(url + "/alerts")
    assert "/login" in browser.current_url
    _shot(browser, "01-sign-in")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    _follow(browser, browser.find_element(By.ID, "sign-in-button"))
    assert browser.current_url.endswith("/alerts")

    rows = browser.find_elements(By.CSS_SELECTOR, "tr.alert-row")
    live = _cli_alerts(env, tmp_path)
    assert len(rows) == len(live) > 0
    assert {r.find_element(By.CSS_SELECTOR, ".status").text for r in rows} == {"open"}
    _shot(browser, "02-alerts")

    refund = next(a for a in live if a["rule"] == "refund")
    _follow(
        browser, browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{refund["id"]}"] a.alert-link')
    )
    assert browser.find_element(By.ID, "alert-status").text == "open"
    assert refund["subject_id"] in browser.page_source
    _shot(browser, "03-alert")

    browser.find_element(By.ID, "ack-note").send_keys("Ana (finance): asking Aurpay")
    _follow(browser, browser.find_element(By.ID, "ack"))
    assert browser.find_element(By.ID, "alert-status").text == "acknowledged"
    assert browser.find_element(By.ID, "alert-note").text == "Ana (finance): asking Aurpay"
    _shot(browser, "04-acknowledged")
    seen = {a["id"]: a for a in _cli_alerts(env, tmp_path)}
    assert seen[refund["id"]]["status"] == "acknowledged"
    assert seen[refund["id"]]["note"] == "Ana (finance): asking Aurpay"

    _follow(browser, browser.find_element(By.ID, "story-link"))
    story = browser.find_element(By.ID, "story").text
    assert f"refund {refund['subject_id']} v1 received" in story
    assert f"journal entry aurpay:refund:{refund['subject_id']}:v1" in story
    assert f"alert {refund['id']} (refund) acknowledged" in story
    assert "status REFUNDED" in story
    _shot(browser, "05-story")

    browser.get(url + "/ledger")
    chart = browser.find_element(By.CSS_SELECTOR, "#balance-chart svg.chart")
    assert chart.size["width"] > 300 and chart.find_elements(By.CSS_SELECTOR, "circle.dot")
    _shot(browser, "06-ledger")

    browser.get(url + "/")
    assert browser.find_element(By.CSS_SELECTOR, "#sources .health").text == "ok"
    _shot(browser, "07-overview")

    # a write without the token is refused, with or without a page's cookie
    with httpx.Client(base_url=url, timeout=30) as anonymous:
        note = {"note": "not me"}
        assert anonymous.post(f"/alerts/{refund['id']}/resolve", data=note).status_code == 401
        for cookie in browser.get_cookies():
            anonymous.cookies.set(cookie["name"], cookie["value"])
        assert anonymous.post(f"/alerts/{refund['id']}/resolve", data=note).status_code == 403
    assert {a["id"]: a for a in _cli_alerts(env, tmp_path)}[refund["id"]]["status"] == (
        "acknowledged"
    )
