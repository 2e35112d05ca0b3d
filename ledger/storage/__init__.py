"""Storage: the database engine, the append-only store, tables, triggers, reads and chain
verification."""
