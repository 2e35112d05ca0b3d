"""The operations console: server-rendered pages over the ledger, the alerts and the sync state
(``tally console``, and mounted at ``/console`` by ``tally run``)."""

from worker.console.app import Console
from worker.console.settings import ConsoleSettings, load_console_settings

__all__ = ["Console", "ConsoleSettings", "load_console_settings"]
