"""Per-source request limits shared by every process: concurrency slots and requests per second."""
