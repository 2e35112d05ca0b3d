"""The callbacks server over real HTTP with real Aurpay signatures: who gets in and what gets
enqueued, for one account and for two side by side."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
import structlog

from ledger import jsonx
from worker.config import Settings, load_settings
from worker.gateways.aurpay.auth import iso_now, sign_callback
from worker.gateways.aurpay.callbacks import AurpayCallbacks
from worker.gateways.contract import Delivery, FollowUp
from worker.inbound.replay import MemoryReplayCache, RedisReplayCache, ReplayCache
from worker.inbound.server import CallbackServer, Route, handle_delivery

TOKEN = "EEB0C8EEB1B6C7D9C7D938449C44DAE7DC484C87C14E"
SECRET = "test-callback-secret"
ORDER = "20250207040935220628"
PATH = "/callbacks/aurpay"
API_KEY = "unused-api-key-0001"


class Refreshes:
    """What the server enqueued: (source, kind, id) each."""

    def __init__(self) -> None:
        self.objects: list[tuple[str, str, str]] = []

    def __call__(self, source: str, refetch: FollowUp) -> None:
        self.objects.append((source, refetch.kind, refetch.external_id))

    @property
    def order_ids(self) -> list[str]:
        return [i for source, kind, i in self.objects if (source, kind) == ("aurpay", "order")]


def _settings(**overrides: Any) -> Settings:
    values = {
        "aurpay_api_key": API_KEY,
        "aurpay_callback_token": TOKEN,
        "aurpay_callback_secret": SECRET,
        **overrides,
    }
    return load_settings(**values)


def _signed(url: str, *, secret: str = SECRET, date: str | None = None) -> dict[str, str]:
    date = date or iso_now()
    return {"Callback-Token": TOKEN, "Date": date, "Signature": sign_callback(secret, date, url)}


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[CallbackServer, Refreshes]]]:
    servers: list[CallbackServer] = []

    def start(
        settings: Settings | None = None, replay_cache: ReplayCache | None = None
    ) -> tuple[CallbackServer, Refreshes]:
        refreshes = Refreshes()
        server = CallbackServer(
            settings or _settings(),
            refreshes,
            replay_cache or MemoryReplayCache(),
            host="127.0.0.1",
            port=0,
        )
        server.start()
        servers.append(server)
        return server, refreshes

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def test_a_signed_get_callback_enqueues_exactly_its_order_id(
    serve: Any, http: httpx.Client
) -> None:
    server, refreshes = serve()
    url = f"{server.url}{PATH}?order_id={ORDER}"

    response = http.get(url, headers=_signed(url))

    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert refreshes.order_ids == [ORDER]


@pytest.mark.parametrize("param", ["id", "orderId"])
def test_the_order_id_may_come_in_other_query_names(
    serve: Any, http: httpx.Client, param: str
) -> None:
    server, refreshes = serve()
    url = f"{server.url}{PATH}?{param}={ORDER}&ref=shop-42"

    assert http.get(url, headers=_signed(url)).status_code == 200
    assert refreshes.order_ids == [ORDER]


def test_a_signed_post_callback_takes_only_the_order_id_from_its_body(
    serve: Any, http: httpx.Client, aurpay_fixture: Callable[[str], Any]
) -> None:
    server, refreshes = serve()
    url = f"{server.url}{PATH}"
    body = aurpay_fixture("callback-order.json")

    response = http.post(url, content=jsonx.dumps(body), headers=_signed(url))

    assert response.status_code == 200
    assert refreshes.order_ids == [body["order_id"]]


def test_a_tampered_body_changes_nothing_but_the_order_id_is_taken_from_the_query(
    serve: Any, http: httpx.Client, aurpay_fixture: Callable[[str], Any]
) -> None:
    server, refreshes = serve()
    url = f"{server.url}{PATH}?order_id={ORDER}"
    forged = {**aurpay_fixture("callback-order.json"), "order_id": "99999", "amount": "1000000"}

    response = http.post(url, content=jsonx.dumps(forged), headers=_signed(url))

    assert response.status_code == 200
    assert refreshes.order_ids == [ORDER]  # a bare id: nothing of the body reaches the ledger


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no token", "missing_token"),
        ("wrong token", "bad_token"),
        ("wrong secret", "bad_signature"),
        ("other url signed", "bad_signature"),
        ("stale date", "stale_or_invalid_date"),
        ("date in the future", "stale_or_invalid_date"),
        ("no signature", "missing_signature"),
    ],
)
def test_unauthentic_callbacks_get_401_and_a_log_line_without_secrets(
    serve: Any, http: httpx.Client, case: str, reason: str
) -> None:
    server, refreshes = serve()
    url = f"{server.url}{PATH}?order_id={ORDER}"
    headers = {
        "no token": {**_signed(url), "Callback-Token": ""},
        "wrong token": {**_signed(url), "Callback-Token": TOKEN[:-1] + "0"},
        "wrong secret": _signed(url, secret="not-the-secret"),
        "other url signed": _signed(f"{server.url}{PATH}?order_id=1"),
        "stale date": _signed(url, date=iso_now(datetime.now(UTC) - timedelta(minutes=6))),
        "date in the future": _signed(url, date=iso_now(datetime.now(UTC) + timedelta(minutes=6))),
        "no signature": {k: v for k, v in _signed(url).items() if k != "Signature"},
    }[case]

    with structlog.testing.capture_logs() as logs:
        response = http.get(url, headers=headers)

    assert (response.status_code, response.json()["ok"]) == (401, False)
    assert refreshes.order_ids == []
    refused = [e for e in logs if e["event"] == "callback_refused"]
    assert [e["reason"] for e in refused] == [reason]
    assert TOKEN not in repr(logs) and SECRET not in repr(logs)
    assert headers.get("Signature", "-") not in repr(logs)


def test_a_replayed_signature_is_refused(serve: Any, http: httpx.Client) -> None:
    server, refreshes = serve()
    url = f"{server.url}{PATH}?order_id={ORDER}"
    headers = _signed(url)

    assert http.get(url, headers=headers).status_code == 200
    assert http.get(url, headers=headers).status_code == 401
    assert refreshes.order_ids == [ORDER]


def test_behind_a_proxy_the_signature_covers_the_public_url(serve: Any, http: httpx.Client) -> None:
    server, refreshes = serve(_settings(tally_public_url="https://tally.example.com/base"))
    local = f"{server.url}{PATH}?order_id={ORDER}"
    public = f"https://tally.example.com/base{PATH}?order_id={ORDER}"

    assert http.get(local, headers=_signed(local)).status_code == 401
    assert http.get(local, headers=_signed(public)).status_code == 200
    assert refreshes.order_ids == [ORDER]


def test_a_callback_without_an_order_id_is_a_bad_request(serve: Any, http: httpx.Client) -> None:
    server, refreshes = serve()
    for url in (f"{server.url}{PATH}", f"{server.url}{PATH}?order_id=../../etc"):
        assert http.get(url, headers=_signed(url)).status_code == 400
    assert refreshes.order_ids == []


def test_without_callback_credentials_the_endpoint_says_503(serve: Any, http: httpx.Client) -> None:
    server, refreshes = serve(load_settings(aurpay_api_key=API_KEY))
    url = f"{server.url}{PATH}?order_id={ORDER}"

    response = http.get(url, headers=_signed(url))

    assert response.status_code == 503
    assert "AURPAY_CALLBACK_SECRET" in response.json()["error"]
    assert refreshes.order_ids == []


def test_health_and_unknown_paths(serve: Any, http: httpx.Client) -> None:
    server, _ = serve()

    assert http.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert http.get(f"{server.url}/elsewhere").status_code == 404
    assert http.get(f"{server.url}/callbacks/ebioro").status_code == 404  # not configured


def _verifier(settings: Settings, source: str = "aurpay") -> AurpayCallbacks:
    return AurpayCallbacks.for_account(
        settings.sources[source].settings,  # type: ignore[arg-type]
        settings.inbound_policy,
    )


def test_a_failed_enqueue_answers_503_and_lets_the_retry_through() -> None:
    url = f"https://tally.example.com{PATH}?order_id={ORDER}"
    route = Route("aurpay", _verifier(_settings()))
    cache, refreshes, calls = MemoryReplayCache(), Refreshes(), []

    def enqueue(source: str, refetch: FollowUp) -> None:
        calls.append(refetch)
        if len(calls) == 1:
            raise ConnectionError("broker down")
        refreshes(source, refetch)

    def deliver() -> int:
        headers = {k.lower(): v for k, v in _signed(url).items()}
        target = f"{PATH}?order_id={ORDER}"
        delivery = Delivery("GET", target, url, headers, b"", datetime.now(UTC))
        status, _ = handle_delivery(route, delivery, replay_cache=cache, enqueue=enqueue)
        return status

    assert [deliver(), deliver()] == [503, 200]
    assert refreshes.order_ids == [ORDER]


def test_the_verifier_repr_hides_the_secrets() -> None:
    text = repr(_verifier(_settings()))
    assert TOKEN not in text and SECRET not in text


def test_two_accounts_get_their_own_routes_credentials_and_source(
    serve: Any, http: httpx.Client
) -> None:
    eu_token, eu_secret = "EUTOKEN0000000000000000000000000000000000000", "eu-callback-secret"
    server, refreshes = serve(
        _settings(
            tally_sources="aurpay,aurpay-eu",
            aurpay_eu_api_key=API_KEY + "-eu",
            aurpay_eu_callback_token=eu_token,
            aurpay_eu_callback_secret=eu_secret,
        )
    )
    eu = f"{server.url}/callbacks/aurpay-eu?order_id=777"
    eu_headers = {"Callback-Token": eu_token, "Date": iso_now()}
    eu_headers["Signature"] = sign_callback(eu_secret, eu_headers["Date"], eu)

    assert http.get(eu, headers=_signed(eu)).status_code == 401  # the other store's pair
    assert http.get(eu, headers=eu_headers).status_code == 200
    default = f"{server.url}{PATH}?order_id={ORDER}"
    assert http.get(default, headers=eu_headers).status_code == 401
    assert http.get(default, headers=_signed(default)).status_code == 200
    assert refreshes.objects == [("aurpay-eu", "order", "777"), ("aurpay", "order", ORDER)]


@pytest.mark.redis
def test_the_redis_replay_cache_refuses_a_replay_across_two_servers(
    serve: Any, http: httpx.Client, redis_namespace: tuple[str, str]
) -> None:
    redis_url, namespace = redis_namespace
    settings = _settings(tally_public_url="https://tally.example.com")
    clients = [redis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url)]
    try:
        (one, one_refreshes), (two, two_refreshes) = (
            serve(settings, RedisReplayCache(c, namespace=namespace)) for c in clients
        )
        public = f"https://tally.example.com{PATH}?order_id={ORDER}"
        headers = _signed(public)

        first = http.get(f"{one.url}{PATH}?order_id={ORDER}", headers=headers)
        replay = http.get(f"{two.url}{PATH}?order_id={ORDER}", headers=headers)
        keys = list(clients[0].scan_iter(f"{namespace}:callback-replay:*"))
    finally:
        for client in clients:
            client.close()

    assert (first.status_code, replay.status_code) == (200, 401)
    assert (one_refreshes.order_ids, two_refreshes.order_ids) == ([ORDER], [])
    assert len(keys) == 1 and headers["Signature"].encode() not in keys[0]
