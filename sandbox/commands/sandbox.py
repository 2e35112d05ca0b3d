"""``tally sandbox``: serve a local Aurpay (default) or Ebioro over HTTP until Ctrl-C.

Credentials come from the same settings the client of the gateway's default account reads —
Aurpay: AURPAY_API_KEY, AURPAY_API_TOKEN, AURPAY_API_SECRET, AURPAY_CALLBACK_TOKEN,
AURPAY_CALLBACK_SECRET; Ebioro: EBIORO_PUBLIC_KEY, EBIORO_SECRET_KEY — each falling back to the
gateway's ``SANDBOX_*`` default when unset, so one .env serves both. Only their names are printed.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from pydantic import SecretStr

from sandbox.aurpay import SandboxConfig, SandboxCredentials, start_sandbox
from sandbox.ebioro import EbioroCredentials, EbioroSandboxConfig
from sandbox.ebioro import start_sandbox as start_ebioro
from worker.accounts import env_prefix
from worker.app.commands import Subparsers
from worker.config import Settings
from worker.errors import TallyError
from worker.gateways import aurpay, ebioro
from worker.gateways.aurpay import settings as aurpay_defaults
from worker.gateways.aurpay.settings import AurpaySettings
from worker.gateways.contract import Gateway, S
from worker.gateways.ebioro import settings as ebioro_defaults
from worker.gateways.ebioro.settings import EbioroSettings

CREDENTIALS = (  # (AurpaySettings and SandboxCredentials field, default)
    ("api_key", aurpay_defaults.SANDBOX_API_KEY),
    ("api_token", aurpay_defaults.SANDBOX_API_TOKEN),
    ("api_secret", aurpay_defaults.SANDBOX_API_SECRET),
    ("callback_token", aurpay_defaults.SANDBOX_CALLBACK_TOKEN),
    ("callback_secret", aurpay_defaults.SANDBOX_CALLBACK_SECRET),
)
EBIORO_CREDENTIALS = (  # (EbioroSettings and EbioroCredentials field, default)
    ("public_key", ebioro_defaults.SANDBOX_PUBLIC_KEY),
    ("secret_key", ebioro_defaults.SANDBOX_SECRET_KEY),
)
DEFAULT_PORTS = {"aurpay": 8077, "ebioro": 8079}  # 8078 is `tally callbacks`


def _rate(text: str) -> float:
    value = float(text)  # a share of requests, not money
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="serve a local Aurpay or Ebioro (deterministic data, faults, admin API) until Ctrl-C",
        description="Serve a local payment gateway over HTTP: its read endpoints and auth, "
        "planted mismatches, fault injection, callbacks/webhooks and an admin API under /_admin/.",
    )
    add = parser.add_argument
    add(
        "--provider",
        choices=sorted(DEFAULT_PORTS),
        default="aurpay",
        help="the gateway to imitate (default aurpay)",
    )
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    add(
        "--port",
        type=_count,
        default=None,
        help="port (default 8077 for aurpay, 8079 for ebioro; 0 picks a free one)",
    )
    add("--orders", type=_count, default=200, help="aurpay: orders to generate (default 200)")
    add("--payments", type=_count, default=200, help="ebioro: payments to generate (default 200)")
    add("--seed", type=int, default=1, help="seed of the data and the faults (default 1)")
    add("--mismatch-rate", type=_rate, default=0.05, help="share of planted mismatches")
    add("--dust-rate", type=_rate, default=0.05, help="share of sub-unit (dust) differences")
    add("--latency-ms", type=_count, default=0, help="delay per API request in ms")
    add(
        "--fault-rate",
        type=_rate,
        default=0.0,
        help="share of API requests failing, split evenly over 429, 500 and truncated bodies",
    )
    add(
        "--invalid-record-rate",
        type=_rate,
        default=0.0,
        help="junk items planted in list pages, per real record",
    )
    add("--retry-after", type=_count, default=1, help="Retry-After seconds on 429 (default 1)")
    add("--page-size-cap", type=int, default=100, help="largest page size served (default 100)")
    add("--webhook-url", default=None, help="ebioro: POST payment changes (webhooks) here")
    parser.set_defaults(handler=handler)


def default_account(gateway: Gateway[S]) -> S:
    """The settings of ``gateway``'s default account (``AURPAY_*``), whether it syncs or not."""
    return gateway.load_settings(env_prefix(gateway.name, None))


def credentials_from(account: AurpaySettings) -> tuple[SandboxCredentials, list[str]]:
    """The Aurpay credentials to accept, and one line per setting saying where it came from."""
    values: dict[str, str] = {}
    lines = []
    for field_name, default in CREDENTIALS:
        secret: SecretStr | None = getattr(account, field_name)
        values[field_name] = secret.get_secret_value() if secret is not None else default
        lines.append(_origin(account.variable(field_name), secret is not None))
    return SandboxCredentials(**values), lines


def ebioro_credentials_from(account: EbioroSettings) -> tuple[EbioroCredentials, list[str]]:
    """The Ebioro key pair to accept and sign webhooks with, and where each came from."""
    values: dict[str, str] = {}
    lines = []
    for field_name, default in EBIORO_CREDENTIALS:
        value: str | SecretStr | None = getattr(account, field_name)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        values[field_name] = text or default
        lines.append(_origin(account.variable(field_name), bool(text)))
    return EbioroCredentials(**values), lines


def _origin(name: str, configured: bool) -> str:
    return f"  {name:<24} {'from your settings' if configured else 'sandbox default'}"


def handler(args: argparse.Namespace, settings: Settings) -> int:
    port = DEFAULT_PORTS[args.provider] if args.port is None else args.port
    try:
        config, origins = _config(args, port)
    except ValueError as exc:
        raise TallyError(f"sandbox: {exc}") from None
    try:
        sandbox = start_ebioro(config) if args.provider == "ebioro" else start_sandbox(config)
    except OSError as exc:
        raise TallyError(f"cannot listen on {args.host}:{port}: {exc.strerror}") from None
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with sandbox:
        print("\n".join(_intro(args, sandbox, origins)), flush=True)
        try:
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print("sandbox stopped")
    return 0


def _config(args: argparse.Namespace, port: int) -> tuple[Any, list[str]]:
    """The sandbox config of ``args.provider`` and where its credentials came from."""
    share = args.fault_rate / 3
    common: dict[str, Any] = {
        "seed": args.seed,
        "mismatch_rate": args.mismatch_rate,
        "dust_rate": args.dust_rate,
        "latency_ms": args.latency_ms,
        "rate_429": share,
        "rate_500": share,
        "rate_truncated": share,
        "rate_invalid_record": args.invalid_record_rate,
        "retry_after_seconds": args.retry_after,
        "page_size_cap": args.page_size_cap,
        "host": args.host,
        "port": port,
    }
    if args.provider == "ebioro":
        keys, origins = ebioro_credentials_from(default_account(ebioro.GATEWAY))
        webhooks = EbioroSandboxConfig(
            payments=args.payments, credentials=keys, webhook_url=args.webhook_url, **common
        )
        return webhooks, origins
    account = default_account(aurpay.GATEWAY)
    credentials, origins = credentials_from(account)
    config = SandboxConfig(
        orders=args.orders, credentials=credentials, sign_query=account.sign_query, **common
    )
    return config, origins


def _intro(args: argparse.Namespace, sandbox: Any, origins: list[str]) -> list[str]:
    world, url = sandbox.world, sandbox.base_url
    planted = (
        f"{len(world.expected_mismatches())} planted mismatches, "
        f"{len(world.dust_cases())} dust cases, {len(world.invalid_records())} junk records"
    )
    if args.provider == "ebioro":
        target = world.webhook_target()
        lines = [
            f"Ebioro sandbox listening on {url}",
            f"  {args.payments} payments (seed {args.seed}), {planted}",
            "  accepts digest auth with these settings (values not shown):",
            *origins,
            f"  point the client at it: EBIORO_BASE_URL={url}",
            f"  webhooks: {target.url if target else f'none (PUT {url}/_admin/webhook to set)'}",
        ]
    else:
        lines = [
            f"Aurpay sandbox listening on {url}",
            f"  {args.orders} orders (seed {args.seed}), {planted}",
            "  accepts API-Key or signature auth with these settings (values not shown):",
            *origins,
            f"  point the client at it: AURPAY_BASE_URL={url}",
        ]
    return [
        *lines,
        f"  admin API: {url}/_admin/truth (no auth: keep it on localhost)",
        "Press Ctrl-C to stop.",
    ]
