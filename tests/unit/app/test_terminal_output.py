"""On a terminal: log lines print above the progress line, never through it; colour follows
NO_COLOR; only warnings show unless asked (-v) or TALLY_LOG_LEVEL is set."""

from __future__ import annotations

import io
import logging

import pytest

from worker.logging import Progress, colour_wanted, configure_logging, get_logger


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_line_prints_above_the_progress_line() -> None:
    screen = Terminal()
    configure_logging("info", "console", stream=screen, verbosity=1, level_set=False)
    progress = Progress.on_terminal(screen)
    assert progress is not None
    progress.show("aurpay/orders 1/2 pages")
    get_logger("test").warning("feed_synced", feed="orders")
    progress.show("aurpay/orders 2/2 pages")
    progress.done()

    # What a terminal shows: every \r\033[K clears the line being drawn.
    lines = [line.rsplit("\r\033[K", 1)[-1] for line in screen.getvalue().split("\n")]
    assert "feed_synced" in lines[0] and "pages" not in lines[0]
    assert lines[1] == "aurpay/orders 2/2 pages"


def test_off_a_terminal_there_is_no_progress_line() -> None:
    assert Progress.on_terminal(io.StringIO()) is None


def test_colour_on_a_terminal_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour_wanted(Terminal()) and not colour_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_wanted(Terminal())


@pytest.mark.parametrize(
    "verbosity,level_set,expected",
    [(0, False, logging.WARNING), (1, False, logging.INFO), (2, False, logging.DEBUG),
     (0, True, logging.INFO)],
)  # fmt: skip
def test_a_terminal_is_quiet_by_default(verbosity: int, level_set: bool, expected: int) -> None:
    configure_logging("info", "auto", stream=Terminal(), verbosity=verbosity, level_set=level_set)
    assert logging.getLogger().level == expected
