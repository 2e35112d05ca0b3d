"""``tally doctor``: check settings, database, Redis and each source's credentials, with fixes.

Every check runs (one failing does not hide the next); exit 1 if any failed.
"""

from __future__ import annotations

import argparse

from worker.app.checks import Check, check_database, check_redis, check_settings, check_sources
from worker.app.commands import Subparsers, add_format, print_json
from worker.config import Settings
from worker.logging import colour_wanted


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check settings, database, Redis and each source's credentials, with fixes",
        description="Check the settings, the database, Redis, and make one authenticated "
        "request per configured source; print each result with a fix hint. Exit 1 if any "
        "check failed.",
    )
    add_format(parser)
    # No group validated up front: a bad setting is the first check's finding, not a stop.
    parser.set_defaults(handler=doctor, uses=())


def run_checks() -> list[Check]:
    checks: list[Check] = []
    settings_check, settings = check_settings()
    checks.append(settings_check)
    if settings is not None:
        checks += [check_database(settings), check_redis(settings)]
        checks += check_sources(settings)
    return checks


def doctor(args: argparse.Namespace, settings: Settings) -> int:
    checks = run_checks()
    ok = all(c.ok for c in checks)
    if args.format == "json":
        print_json({"ok": ok, "checks": [c.to_json() for c in checks]})
    else:
        import sys

        colour = colour_wanted(sys.stdout)
        for c in checks:
            mark = "ok  " if c.ok else "FAIL"
            if colour:
                mark = f"\033[{'32' if c.ok else '31'}m{mark}\033[0m"
            print(f"{mark} {c.name:<16} {c.detail}")
            if c.fix:
                print(f"     {'':<16} fix: {c.fix}")
        print("all checks passed" if ok else "some checks failed")
    return 0 if ok else 1
