"""The HTTP edge: gateway callbacks and webhooks are verified here, then turned into re-fetches."""
