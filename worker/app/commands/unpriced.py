"""``tally unpriced``: the entries in force that carry no fiat value (the gateway quoted none).

Such an entry is never valued at zero: it is flagged ``no-price`` and listed here, and
``tally status`` counts them, so a controller knows what the reporting-currency view leaves out.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ledger.chain import iso_utc
from ledger.money import fmt
from ledger.storage.open import open_ledger
from worker.app.commands import Subparsers
from worker.config import Settings


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "unpriced", help="list entries with no fiat value (flagged no-price)", description=__doc__
    )
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.set_defaults(handler=list_unpriced, uses=("ledger",), needs_ledger=True)


def list_unpriced(args: argparse.Namespace, settings: Settings) -> int:
    store = open_ledger(settings.database_url, settings.precision_table(), auto_upgrade=False)
    try:
        rows: list[dict[str, Any]] = [
            {
                "seq": entry.seq,
                "date": iso_utc(entry.date),
                "key": entry.key,
                "source": entry.source,
                "external_id": entry.external_id,
                "amounts": [
                    {"account": p.account, "currency": p.currency, "amount": fmt(p.amount)}
                    for p in entry.postings
                ],
            }
            for entry in store.iter_unpriced()
        ]
    finally:
        store.close()
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    print(f"{len(rows)} entries without a fiat value")
    for row in rows:
        print(f"{row['date'][:10]}  {row['key']}")
    return 0
