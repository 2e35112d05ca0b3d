"""The requests-per-second pace holds in every sliding second (a limiter over it:
``test_ratelimit.py``)."""

from __future__ import annotations

import pytest

from worker.limits.pace import LocalPace


def busiest_second(times: list[float]) -> int:
    """The most admissions in any half-open window [t, t + 1 s)."""
    times, most, start = sorted(times), 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_a_refused_request_is_told_when_the_next_admission_is_due() -> None:
    pace = LocalPace(4)
    assert pace.admit(100.0) == 0.0
    assert pace.admit(100.1) == pytest.approx(0.15)
    assert pace.admit(100.25) == 0.0
    assert pace.admit(100.3) == pytest.approx(0.2)


@pytest.mark.parametrize("rate", [1, 4, 19, 20, 21, 50, 100, 1000])
def test_no_sliding_second_holds_more_than_five_percent_over_the_rate(rate: int) -> None:
    """Requests as early as the pace allows, some waiters late (a busy machine): any window
    of one second holds at most floor(1.05 * rate), and lateness is made up for."""
    pace, now, admitted = LocalPace(rate), 1000.0, []
    for n in range(3 * rate + 5):
        while (wait := pace.admit(now)) > 0:
            now += wait
        admitted.append(now)
        now += (n % 3) * 0.2 / rate  # every third waiter wakes late by 0.4 intervals
    assert busiest_second(admitted) <= (105 * rate) // 100
    assert len(admitted) / (admitted[-1] - admitted[0] + 1 / rate) >= 0.9 * rate
