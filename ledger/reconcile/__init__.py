"""Reconciliation: pure rules over snapshots, the plans that pick what to re-run, and meta
checks."""
