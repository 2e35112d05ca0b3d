"""One module per ``tally`` sub-command; each exposes ``register(subparsers)``."""
