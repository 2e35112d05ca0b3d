"""``tally sandbox``: serve a local Aurpay over HTTP until Ctrl-C (see the sandbox package).

Credentials come from the same settings the client reads (AURPAY_API_KEY, AURPAY_API_TOKEN,
AURPAY_API_SECRET, AURPAY_CALLBACK_TOKEN, AURPAY_CALLBACK_SECRET), each falling back to
``worker.config.SANDBOX_*`` when unset, so one .env serves both. Only their names are printed.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from pydantic import SecretStr

from worker import config as defaults
from worker.config import Settings
from worker.errors import TallyError
from worker.providers.aurpay.sandbox import SandboxConfig, SandboxCredentials, start_sandbox

CREDENTIALS = (  # (setting, SandboxCredentials field, default)
    ("AURPAY_API_KEY", "api_key", defaults.SANDBOX_API_KEY),
    ("AURPAY_API_TOKEN", "api_token", defaults.SANDBOX_API_TOKEN),
    ("AURPAY_API_SECRET", "api_secret", defaults.SANDBOX_API_SECRET),
    ("AURPAY_CALLBACK_TOKEN", "callback_token", defaults.SANDBOX_CALLBACK_TOKEN),
    ("AURPAY_CALLBACK_SECRET", "callback_secret", defaults.SANDBOX_CALLBACK_SECRET),
)


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


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="serve a local Aurpay (deterministic data, faults, admin API) until Ctrl-C",
        description="Serve a local Aurpay over HTTP: the four read endpoints, both auth "
        "methods, planted mismatches, fault injection, callbacks and an admin API under /_admin/.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    add("--port", type=_count, default=8077, help="port (default 8077; 0 picks a free one)")
    add("--orders", type=_count, default=200, help="orders to generate (default 200)")
    add("--seed", type=int, default=1, help="seed of the data and the faults (default 1)")
    add("--mismatch-rate", type=_rate, default=0.05, help="share of planted mismatches")
    add("--dust-rate", type=_rate, default=0.05, help="share of sub-unit (dust) differences")
    add("--latency-ms", type=_count, default=0, help="delay per API request in ms")
    add("--fault-rate", type=_rate, default=0.0,
        help="share of API requests failing, split evenly over 429, 500 and truncated bodies")
    add("--invalid-record-rate", type=_rate, default=0.0,
        help="junk items planted in list pages, per real record")
    add("--retry-after", type=_count, default=1, help="Retry-After seconds on 429 (default 1)")
    add("--page-size-cap", type=int, default=100, help="largest page size served (default 100)")
    parser.set_defaults(handler=handler)


def credentials_from(settings: Settings) -> tuple[SandboxCredentials, list[str]]:
    """The credentials to accept, and one line per setting saying where its value came from."""
    values: dict[str, str] = {}
    lines = []
    for name, field_name, default in CREDENTIALS:
        secret: SecretStr | None = getattr(settings, name.lower())
        values[field_name] = secret.get_secret_value() if secret is not None else default
        origin = "from your settings" if secret is not None else "sandbox default"
        lines.append(f"  {name:<24} {origin}")
    return SandboxCredentials(**values), lines


def handler(args: argparse.Namespace, settings: Settings) -> int:
    credentials, origins = credentials_from(settings)
    share = args.fault_rate / 3
    try:
        config = SandboxConfig(
            seed=args.seed, orders=args.orders, mismatch_rate=args.mismatch_rate,
            dust_rate=args.dust_rate, latency_ms=args.latency_ms, rate_429=share,
            rate_500=share, rate_truncated=share, rate_invalid_record=args.invalid_record_rate,
            retry_after_seconds=args.retry_after, page_size_cap=args.page_size_cap,
            credentials=credentials, sign_query=settings.aurpay_sign_query,
            host=args.host, port=args.port,
        )
    except ValueError as exc:
        raise TallyError(f"sandbox: {exc}") from None
    try:
        sandbox = start_sandbox(config)
    except OSError as exc:
        raise TallyError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with sandbox:
        world = sandbox.world
        print(f"Aurpay sandbox listening on {sandbox.base_url}")
        print(f"  {args.orders} orders (seed {args.seed}), "
              f"{len(world.expected_mismatches())} planted mismatches, "
              f"{len(world.dust_cases())} dust cases, {len(world.invalid_records())} junk records")
        print("  accepts API-Key or signature auth with these settings (values not shown):")
        print("\n".join(origins))
        print(f"  point the client at it: AURPAY_BASE_URL={sandbox.base_url}")
        print(f"  admin API: {sandbox.base_url}/_admin/truth (no auth: keep it on localhost)")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print("sandbox stopped")
    return 0
