"""Reconciliation runs and alert delivery: findings become alerts, alert changes reach the sinks."""
