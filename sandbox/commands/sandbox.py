"""``tally sandbox``: serve a local Aurpay (default) or Ebioro over HTTP until Ctrl-C.

It reads none of the client's settings: it accepts its own public test credentials (the
``SANDBOX_*`` constants, not secrets) and prints the lines a client needs to reach it, as a
``.env`` snippet with ``--env``.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from worker.app.commands import MAX_PORT, Subparsers, int_range
from worker.config import Settings
from worker.errors import TallyError

DEFAULT_PORTS = {"aurpay": 8077, "ebioro": 8079}  # 8078 is `tally callbacks`
MAX_OBJECTS = 1_000_000


def share(text: str) -> float:
    try:
        value = float(text)  # a share of requests, not money
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
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
        type=int_range(0, MAX_PORT),
        default=None,
        help="port (default 8077 for aurpay, 8079 for ebioro; 0 picks a free one)",
    )
    count = int_range(0, MAX_OBJECTS)
    add("--orders", type=count, default=200, help="aurpay: orders to generate (default 200)")
    add("--payments", type=count, default=200, help="ebioro: payments to generate (default 200)")
    add("--seed", type=int_range(0, 2**32 - 1), default=1, help="seed of data and faults (1)")
    add("--mismatch-rate", type=share, default=0.05, help="share of planted mismatches, 0-1")
    add("--dust-rate", type=share, default=0.05, help="share of sub-unit (dust) differences, 0-1")
    add("--latency-ms", type=int_range(0, 60_000), default=0, help="delay per API request (ms)")
    add(
        "--fault-rate",
        type=share,
        default=0.0,
        help="share of API requests failing, split evenly over 429, 500 and truncated bodies",
    )
    add(
        "--invalid-record-rate",
        type=share,
        default=0.0,
        help="junk items planted in list pages, per real record, 0-1",
    )
    add("--retry-after", type=int_range(0, 3600), default=1, help="Retry-After on 429 (s)")
    add(
        "--page-size-cap",
        type=int_range(1, 10_000),
        default=100,
        help="largest page size served (default 100)",
    )
    add("--webhook-url", default=None, help="ebioro: POST payment changes (webhooks) here")
    add(
        "--env",
        action="store_true",
        help="print the .env lines a client needs to use this sandbox, then exit",
    )
    # The sandbox reads no setting: a client's half-done .env must not stop it.
    parser.set_defaults(handler=handler, uses=())


def client_env(provider: str, url: str) -> list[str]:
    """The variables a client sets to sync from this sandbox: its URL and its public test
    credentials (the same constants the sandbox accepts)."""
    if provider == "ebioro":
        from worker.gateways.ebioro import settings as ebioro

        return [
            f"EBIORO_BASE_URL={url}",
            f"EBIORO_PUBLIC_KEY={ebioro.SANDBOX_PUBLIC_KEY}",
            f"EBIORO_SECRET_KEY={ebioro.SANDBOX_SECRET_KEY}",
        ]
    from worker.gateways.aurpay import settings as aurpay

    return [
        f"AURPAY_BASE_URL={url}",
        f"AURPAY_API_KEY={aurpay.SANDBOX_API_KEY}",
        f"AURPAY_CALLBACK_TOKEN={aurpay.SANDBOX_CALLBACK_TOKEN}",
        f"AURPAY_CALLBACK_SECRET={aurpay.SANDBOX_CALLBACK_SECRET}",
    ]


def handler(args: argparse.Namespace, settings: Settings) -> int:
    port = DEFAULT_PORTS[args.provider] if args.port is None else args.port
    if args.env:
        print(f"# tally sandbox --provider {args.provider}: public test credentials, not secrets")
        print("\n".join(client_env(args.provider, f"http://{args.host}:{port}")))
        return 0
    from sandbox.aurpay import start_sandbox
    from sandbox.ebioro import start_sandbox as start_ebioro

    try:
        config = _config(args, port)
    except ValueError as exc:
        raise TallyError(f"sandbox: {exc}") from None
    try:
        sandbox = start_ebioro(config) if args.provider == "ebioro" else start_sandbox(config)
    except OSError as exc:
        raise TallyError(f"cannot listen on {args.host}:{port}: {exc.strerror}") from None
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with sandbox:
        print("\n".join(_intro(args, sandbox)), flush=True)
        try:
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print("sandbox stopped")
    return 0


def _config(args: argparse.Namespace, port: int) -> Any:
    """The sandbox config of ``args.provider`` (its default, public credentials)."""
    from sandbox.aurpay import SandboxConfig
    from sandbox.ebioro import EbioroSandboxConfig

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
        return EbioroSandboxConfig(payments=args.payments, webhook_url=args.webhook_url, **common)
    return SandboxConfig(orders=args.orders, **common)


def _intro(args: argparse.Namespace, sandbox: Any) -> list[str]:
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
            f"  webhooks: {target.url if target else f'none (PUT {url}/_admin/webhook to set)'}",
        ]
    else:
        lines = [
            f"Aurpay sandbox listening on {url}",
            f"  {args.orders} orders (seed {args.seed}), {planted}",
        ]
    return [
        *lines,
        "  point a client at it with these lines (public test credentials, not secrets;",
        "  `tally sandbox --env` prints them as a .env snippet):",
        *(f"    {line}" for line in client_env(args.provider, url)),
        f"  admin API: {url}/_admin/truth (no auth: keep it on localhost)",
        "Press Ctrl-C to stop.",
    ]
