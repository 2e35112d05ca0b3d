"""How deeply a JSON document nests, found without parsing it: a parser recurses once per
level, so a signed body of 100,000 ``[`` would exhaust the stack before any check could run."""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 64  # far beyond any gateway's payload; far below the interpreter's stack

# Strings first (their brackets are text), then brackets. The string pattern is the "unrolled
# loop" form, linear in the input.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def nests_deeper_than(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``body`` opens more than ``limit`` arrays/objects inside each other."""
    if b"[" not in body and b"{" not in body:
        return False
    depth = 0
    for match in _TOKEN.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth = max(depth - 1, 0)
    return False
