"""One module per ``tally`` sub-command; each exposes ``register(subparsers)``.

Shared here: numeric arguments with a range (every number a person types is checked, one line
naming the option), and ``--format json``: one JSON document on stdout, documented in
docs/cli.md, whose keys only ever get added to.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TypeAlias

# What ``register`` receives: the parser's sub-command set (argparse names it privately).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

MAX_PORT = 65535


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (no limit when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            top = f"to {high}" if high is not None else "or more"
            raise argparse.ArgumentTypeError(f"{text} is out of range ({low} {top})")
        return value

    parse.__name__ = "number"  # argparse's "invalid number value" wording
    return parse


def float_range(low: float, high: float | None = None, *, open_low: bool = False) -> Any:
    """An argparse type: a number above (or from) ``low`` up to ``high``. Durations and shares
    only, never money."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        too_low = value <= low if open_low else value < low
        if value != value or too_low or (high is not None and value > high):
            bound = f"above {low}" if open_low else f"from {low}"
            top = f" to {high}" if high is not None else ""
            raise argparse.ArgumentTypeError(f"{text} is out of range ({bound}{top})")
        return value

    parse.__name__ = "number"
    return parse


def add_format(parser: argparse.ArgumentParser, *others: str) -> None:
    """``--format text|json`` (and ``others``): json prints one stable document on stdout."""
    parser.add_argument(
        "--format",
        choices=["text", "json", *others],
        default="text",
        help="text for people (default), json for programs (schema: docs/cli.md)",
    )


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
