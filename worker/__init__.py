"""tally's worker: provider clients, sandboxes, dramatiq actors, scheduler, callbacks, CLI."""
