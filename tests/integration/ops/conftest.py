"""Every ops test builds brokers (``setup_broker`` makes each dramatiq's global one): put the
previous global broker back after each."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest


@pytest.fixture(autouse=True)
def _restore_global_broker() -> Iterator[None]:
    previous = dramatiq.broker.global_broker
    yield
    dramatiq.set_broker(previous)  # type: ignore[arg-type]
