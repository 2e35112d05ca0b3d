"""Gateways that exist only in the tests (to prove the gateway seam)."""
