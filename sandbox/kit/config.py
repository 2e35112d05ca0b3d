"""What every sandbox's config holds besides its provider's own fields: the seed and plant rates
that decide the data, the faults, paging and clock tolerance, and where to listen."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.kit.faults import FaultRates


@dataclass(frozen=True)
class SandboxSettings:
    """Base of a provider's sandbox config; the same config, the same world."""

    seed: int = 1
    mismatch_rate: float = 0.05
    dust_rate: float = 0.05
    latency_ms: int = 0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_truncated: float = 0.0
    rate_invalid_record: float = 0.0
    retry_after_seconds: int = 1
    page_size_cap: int = 100
    max_skew_seconds: int = 300  # how far a signed request's time may be from ours
    newest_first: bool = True
    host: str = "127.0.0.1"
    port: int = 0  # 0: the OS picks a free port

    def __post_init__(self) -> None:
        if self.page_size_cap < 1:
            raise ValueError("page_size_cap must be >= 1")
        for name in ("mismatch_rate", "dust_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        self.fault_rates()  # validates the fault fields

    def fault_rates(self) -> FaultRates:
        return FaultRates(
            rate_429=self.rate_429,
            rate_500=self.rate_500,
            rate_truncated=self.rate_truncated,
            rate_invalid_record=self.rate_invalid_record,
            latency_ms=self.latency_ms,
            retry_after_seconds=self.retry_after_seconds,
        )
