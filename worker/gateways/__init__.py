"""Payment gateway sources: one sub-package per provider (client, auth, payloads, sandbox)."""
