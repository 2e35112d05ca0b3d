"""Sources as accounts of gateways: ``TALLY_SOURCES`` and the per-account variables, good values
and bad ones (each a one-line ``ConfigError`` naming the variable), and the registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from ledger.model import RawRecord, Rejected
from worker.config import load_settings
from worker.errors import ConfigError
from worker.gateways.aurpay.source import AurpaySource
from worker.gateways.base.http import Limiter
from worker.gateways.contract import FetchedPage, FollowUp, Gateway, GatewaySettings, LatestLookup
from worker.gateways.registry import REGISTRY, Registry
from worker.runtime import build_sources, gateways_by_source, ledger_derivers, reconcile_plans

KEY, EU_KEY, EU_SECRET = "us-api-key-0001", "eu-api-token-0002", "eu-api-secret-0003"


def test_without_tally_sources_the_gateways_with_default_credentials_sync() -> None:
    assert list(load_settings().sources) == []
    assert list(load_settings(aurpay_api_key=KEY).sources) == ["aurpay"]
    both = load_settings(
        aurpay_api_token="t-0001",
        aurpay_api_secret="s-0001",
        ebioro_public_key="pk_test_x",
        ebioro_secret_key="sk_test_x",
        ebioro_base_url="https://test-merchant.ebioro.com",
    )
    assert list(both.sources) == ["aurpay", "ebioro"]
    assert list(load_settings(aurpay_api_token="t-0001").sources) == []  # half a pair: off


def test_tally_sources_names_accounts_read_from_infixed_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TALLY_SOURCES", " aurpay-eu , aurpay ")
    monkeypatch.setenv("AURPAY_API_KEY", KEY)
    monkeypatch.setenv("AURPAY_EU_API_TOKEN", EU_KEY)
    monkeypatch.setenv("AURPAY_EU_API_SECRET", EU_SECRET)
    monkeypatch.setenv("AURPAY_EU_BASE_URL", "https://eu.aurpay.test/")
    monkeypatch.setenv("AURPAY_EU_REQUESTS_PER_SECOND", "7")

    settings = load_settings()

    assert list(settings.sources) == ["aurpay-eu", "aurpay"]  # the listed order
    eu, us = settings.sources["aurpay-eu"], settings.sources["aurpay"]
    assert (eu.gateway.name, eu.account, us.account) == ("aurpay", "eu", None)
    assert eu.settings.base_url == "https://eu.aurpay.test"  # type: ignore[attr-defined]
    assert (eu.settings.requests_per_second, us.settings.requests_per_second) == (7, 20)
    assert us.settings.base_url == "https://dashboard.aurpay.net"  # type: ignore[attr-defined]
    assert eu.settings.variable("api_key") == "AURPAY_EU_API_KEY"
    assert us.settings.variable("api_key") == "AURPAY_API_KEY"


def test_a_listed_source_needs_its_own_credentials_and_an_unlisted_one_stays_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AURPAY_API_KEY", KEY)  # the default account's key, not listed

    listed = load_settings(tally_sources="aurpay-eu", aurpay_eu_api_key=EU_KEY)

    assert list(listed.sources) == ["aurpay-eu"]
    account = listed.sources["aurpay-eu"].settings
    assert account.api_key.get_secret_value() == EU_KEY  # type: ignore[attr-defined]


def test_accounts_are_read_from_the_dot_env_file_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "TALLY_SOURCES=aurpay,aurpay-2\nAURPAY_API_KEY=k-0001\nAURPAY_2_API_KEY=k-0002\n"
        "AURPAY_2_PAGE_SIZE=50\n",
        encoding="utf-8",
    )
    settings = load_settings()
    assert list(settings.sources) == ["aurpay", "aurpay-2"]
    assert settings.sources["aurpay-2"].settings.page_size == 50  # type: ignore[attr-defined]


def test_every_accounts_secrets_feed_the_redaction_and_never_a_repr() -> None:
    settings = load_settings(
        tally_sources="aurpay,aurpay-eu",
        aurpay_api_key=KEY,
        aurpay_callback_secret="us-callback-secret",
        aurpay_eu_api_token=EU_KEY,
        aurpay_eu_api_secret=EU_SECRET,
    )
    secrets = settings.secret_values()
    assert {KEY, "us-callback-secret", EU_KEY, EU_SECRET} <= set(secrets)
    text = repr(settings) + repr(dict(settings.sources))
    assert not any(secret in text for secret in (KEY, EU_KEY, EU_SECRET))
    # A default account that does not sync still has its secrets masked.
    idle = load_settings(aurpay_callback_secret="idle-callback-secret")
    assert list(idle.sources) == [] and "idle-callback-secret" in idle.secret_values()


@pytest.mark.parametrize(
    ("values", "variable", "says"),
    [
        ({"tally_sources": "aurpey-eu"}, "TALLY_SOURCES", "unknown gateway 'aurpey'"),
        ({"tally_sources": "Aurpay-EU"}, "TALLY_SOURCES", "is not a source name"),
        ({"tally_sources": "aurpay_eu"}, "TALLY_SOURCES", "is not a source name"),
        ({"tally_sources": "aurpay-eu-west"}, "TALLY_SOURCES", "is not a source name"),
        ({"tally_sources": "aurpay-" + "x" * 26}, "TALLY_SOURCES", "at most 32"),
        ({"tally_sources": "aurpay,,ebioro"}, "TALLY_SOURCES", "comma-separated"),
        ({"tally_sources": ","}, "TALLY_SOURCES", "comma-separated"),
        ({"tally_sources": "aurpay,aurpay"}, "TALLY_SOURCES", "listed twice"),
        ({"tally_sources": "aurpay-eu"}, "AURPAY_EU_API_KEY", "source aurpay-eu"),
        (
            {"tally_sources": "aurpay-eu", "aurpay_eu_api_token": EU_KEY},
            "AURPAY_EU_API_SECRET",
            "required with AURPAY_EU_API_TOKEN",
        ),
        (
            {"tally_sources": "ebioro-b", "ebioro_b_public_key": "pk_test_b"},
            "EBIORO_B_SECRET_KEY",
            "set both EBIORO_B_PUBLIC_KEY and EBIORO_B_SECRET_KEY",
        ),
        (
            {
                "tally_sources": "ebioro-b",
                "ebioro_b_public_key": "pk_test_b",
                "ebioro_b_secret_key": EU_SECRET,
            },
            "EBIORO_B_BASE_URL",
            "required when the Ebioro keys are set",
        ),
        (
            {"tally_sources": "aurpay-eu", "aurpay_eu_api_key": EU_KEY, "aurpay_eu_page_size": 0},
            "AURPAY_EU_PAGE_SIZE",
            "greater than or equal to 1",
        ),
        (
            {
                "tally_sources": "aurpay-eu",
                "aurpay_eu_api_key": EU_KEY,
                "aurpay_eu_base_url": "ftp://x",
            },
            "AURPAY_EU_BASE_URL",
            "http(s) URL",
        ),
        (
            {
                "tally_sources": "aurpay-eu",
                "aurpay_eu_api_key": EU_KEY,
                "aurpay_eu_naive_timezone": "Mars/Base",
            },
            "AURPAY_EU_NAIVE_TIMEZONE",
            "unknown time zone",
        ),
        ({"aurpay_eu_api_key": EU_KEY}, "AURPAY_EU_API_KEY", "no configured source reads it"),
    ],
)
def test_bad_accounts_are_one_line_errors_naming_the_variable(
    values: dict[str, Any], variable: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**values)
    message = str(caught.value)
    assert message.startswith(f"invalid setting {variable}: "), message
    assert says in message and "\n" not in message
    assert EU_KEY not in message and EU_SECRET not in message


def test_bad_accounts_from_the_environment_name_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TALLY_SOURCES", "aurpay,aurpay-eu")
    monkeypatch.setenv("AURPAY_API_KEY", KEY)
    monkeypatch.setenv("AURPAY_EU_API_KEY", EU_KEY)
    monkeypatch.setenv("AURPAY_EU_TIMEOUT_SECONDS", "soon")
    with pytest.raises(ConfigError, match=r"^invalid setting AURPAY_EU_TIMEOUT_SECONDS: "):
        load_settings()


def test_no_source_at_all_names_what_to_set() -> None:
    message = str(load_settings().accounts.none_configured())
    assert message.startswith("invalid setting TALLY_SOURCES: no source is configured")
    assert "AURPAY_API_KEY" in message and "EBIORO_SECRET_KEY" in message


def test_each_account_is_its_own_source_with_its_own_client() -> None:
    settings = load_settings(
        tally_sources="aurpay,aurpay-eu",
        aurpay_api_key=KEY,
        aurpay_eu_api_key=EU_KEY,
        aurpay_eu_base_url="https://eu.aurpay.test",
    )
    sources = build_sources(settings, None)
    try:
        us, eu = sources["aurpay"], sources["aurpay-eu"]
        assert isinstance(us, AurpaySource) and isinstance(eu, AurpaySource)
        assert (us.name, eu.name) == ("aurpay", "aurpay-eu")
        assert "eu.aurpay.test" in repr(eu) and "eu.aurpay.test" not in repr(us)
        assert EU_KEY not in repr(eu)
    finally:
        for source in sources.values():
            source.close()
    # The books know each source by its own name; each gateway's own name is always known.
    assert set(gateways_by_source(settings)) == {"aurpay", "aurpay-eu", "ebioro"}
    assert {s for s, _ in ledger_derivers(settings)} == {"aurpay", "aurpay-eu", "ebioro"}
    plans = reconcile_plans(settings)
    assert plans["aurpay-eu"].source == "aurpay-eu"


def test_records_carry_the_source_name_not_the_gateways() -> None:
    class Client:
        def order_detail(self, order_id: str) -> Any:
            return _Parsed(RawRecord("aurpay", "order", order_id, {"order_id": order_id}))

        def refund_info(self, order_id: str) -> Any:
            return None

    eu = AurpaySource("aurpay-eu", Client())  # type: ignore[arg-type]
    fetched = eu.fetch_object("order", "o-1")
    assert isinstance(fetched, RawRecord) and fetched.source == "aurpay-eu"


class _Parsed:
    def __init__(self, record: RawRecord) -> None:
        self.record = record

    def to_raw_record(self) -> RawRecord:
        return self.record


# --- the registry, and a gateway added by a composition root


class FakeSettings(GatewaySettings):
    DESCRIPTIONS: ClassVar[dict[str, str]] = {"token": "The fake gateway's token."}
    token: SecretStr | None = None

    def missing_credentials(self) -> tuple[str, str] | None:
        return None if self.token else (self.variable("token"), "required")


class FakeSource:
    feeds: tuple[str, ...] = ("things",)
    refetchable: frozenset[str] = frozenset()

    def __init__(self, name: str) -> None:
        self.name = name

    def fetch_page(self, feed: str, page: int) -> FetchedPage:
        return FetchedPage(feed, page, 1, 0, (), (), ())

    def fetch_object(self, kind: str, external_id: str) -> RawRecord | Rejected | None:
        return None

    def follow_ups(
        self,
        records: Sequence[RawRecord],
        new_keys: set[tuple[str, str]],
        ledger: LatestLookup,
        *,
        rescan: bool,
    ) -> Sequence[FollowUp]:
        return []

    def close(self) -> None:
        pass


def _fake_source(name: str, settings: FakeSettings, limiter: Limiter) -> FakeSource:
    return FakeSource(name)


AURPAY = REGISTRY.gateways[0]
FAKE: Gateway[FakeSettings] = Gateway(
    name="fakepay",
    settings=FakeSettings,
    build_source=_fake_source,
    derivers={},
    make_plan=AURPAY.make_plan,
)


def test_a_composition_root_adds_a_gateway_without_touching_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = REGISTRY.with_gateway(FAKE)
    monkeypatch.setenv("FAKEPAY_SHOP2_TOKEN", "fake-token-0001")

    settings = load_settings(gateways=registry, tally_sources="fakepay-shop2")

    assert list(settings.sources) == ["fakepay-shop2"]
    assert "fake-token-0001" in settings.secret_values()
    sources = build_sources(settings, None)
    assert sources["fakepay-shop2"].name == "fakepay-shop2"
    with pytest.raises(ConfigError, match="unknown gateway 'fakepay'"):
        load_settings(tally_sources="fakepay")  # the built-in registry knows no such gateway


def test_a_registry_refuses_duplicate_or_malformed_gateway_names() -> None:
    with pytest.raises(ValueError, match="distinct"):
        REGISTRY.with_gateway(replace(FAKE, name="aurpay"))
    with pytest.raises(ValueError, match="lower-case"):
        Registry((replace(FAKE, name="Fake-Pay"),))
    assert REGISTRY.names == ("aurpay", "ebioro")
