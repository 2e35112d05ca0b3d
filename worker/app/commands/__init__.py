"""One module per ``tally`` sub-command; each exposes ``register(subparsers)``."""

from __future__ import annotations

import argparse
from typing import TypeAlias

# What ``register`` receives: the parser's sub-command set (argparse names it privately).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
