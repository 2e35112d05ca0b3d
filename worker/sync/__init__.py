"""The sync engine: walk a gateway's feeds page by page, append to the ledger, track each run."""
