"""The soak benchmark, shortened for CI (issue 17)."""
