"""Alerts: the state machine, their store, the delivery outbox and suspense links."""
