"""``tally adjust``: post a manual adjusting entry, balanced, with a reason and an author.

    tally adjust --reason "bank fee on payout 42" --author ana \\
        --posting expenses:bank-fees USD 2.50 --posting assets:bank:USD USD -2.50

The entry is appended to the chain like everything else (a ``tally``/``adjustment`` record
holds the request as made), dated in the open period (``--date``, default today; a closed date
moves to the first open day), and exported with its author and reason. A leg is ACCOUNT
CURRENCY AMOUNT, positive for a debit; the legs must balance per currency.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime

from ledger.money import InvalidAmount, to_decimal
from ledger.storage.open import open_ledger
from worker.alerts.adjust import current_author, post_adjustment
from worker.app.commands import Subparsers
from worker.config import Settings
from worker.errors import TallyError


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "adjust",
        help="post a manual adjusting entry (balanced, with a reason)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reason", required=True, help="why: kept in the chain and exports")
    parser.add_argument("--author", default=None, help="who (default: your login name)")
    parser.add_argument("--date", type=_day, default=None, metavar="YYYY-MM-DD")
    parser.add_argument(
        "--posting",
        nargs=3,
        action="append",
        required=True,
        metavar=("ACCOUNT", "CURRENCY", "AMOUNT"),
        help="one leg (repeat: at least two); AMOUNT positive = debit",
    )
    parser.set_defaults(handler=adjust, uses=("ledger",), needs_ledger=True)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def adjust(args: argparse.Namespace, settings: Settings) -> int:
    legs = []
    for account, currency, amount in args.posting:
        try:
            legs.append((account, currency, to_decimal(amount)))
        except InvalidAmount as exc:
            raise TallyError(f"--posting {account} {currency} {amount}: {exc}") from None
    now = datetime.now(UTC)
    store = open_ledger(settings.database_url, settings.precision_table(), auto_upgrade=False)
    try:
        posted = post_adjustment(
            store,
            legs,
            reason=args.reason,
            author=args.author or current_author(),
            on=args.date or now.date(),
            now=now,
        )
    finally:
        store.close()
    print(f"adjusting entry {posted} posted")
    return 0
