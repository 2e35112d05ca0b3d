"""Tally accounts to an accounting system's general-ledger accounts, by the most specific prefix.

A mapping is a JSON object: a key is a tally account or an ancestor of accounts (components
split on ``:``), a value is the GL account as the target system names it (a QuickBooks Online
account name such as ``Crypto:Aurpay``, a Xero account code such as ``610``)::

    {"assets:aurpay": "1210", "assets:ebioro:USDC": "1220", "income:sales": "200"}

``assets:aurpay:BTC`` resolves to ``1210`` (its nearest mapped ancestor); an exact key wins.
No catch-all on purpose: an account nobody mapped must be seen, not booked somewhere plausible.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class AccountMap:
    accounts: Mapping[str, str]

    @classmethod
    def parse(cls, text: str) -> AccountMap:
        """Read a JSON object of non-empty strings; raises ``ValueError`` saying what is wrong."""
        try:
            raw = json.loads(text or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg} at character {exc.pos})") from None
        if not isinstance(raw, dict):
            raise ValueError("must be a JSON object of tally account to GL account")
        bad = sorted(
            str(key)
            for key, value in raw.items()
            if not key.strip() or not isinstance(value, str) or not value.strip()
        )
        if bad:
            raise ValueError(f"each key and value must be a non-empty string: {', '.join(bad)}")
        return cls({key.strip(): value.strip() for key, value in raw.items()})

    def resolve(self, account: str) -> str | None:
        """The GL account of ``account``: its own entry, else its nearest mapped ancestor."""
        parts = account.split(":")
        while parts:
            found = self.accounts.get(":".join(parts))
            if found is not None:
                return found
            parts.pop()
        return None
