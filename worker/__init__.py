"""tally's worker: provider clients and sandboxes, dramatiq actors, scheduler, callbacks and the CLI."""
