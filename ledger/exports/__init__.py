"""Exports: snapshots and journal as JSON lines and CSV, and the Beancount file."""
