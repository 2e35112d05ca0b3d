"""Hypothesis profiles for the property tests: ``ci`` is derandomized, loaded when CI=true."""

from __future__ import annotations

import os

from hypothesis import settings

# derandomize: CI runs the same examples every time, so a red build is reproducible locally.
# deadline off: a per-example time limit is a time-based assert and flakes on a busy runner.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
