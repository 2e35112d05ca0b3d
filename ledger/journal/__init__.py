"""The double-entry journal: accounts, per-gateway postings, derivation and balances."""
