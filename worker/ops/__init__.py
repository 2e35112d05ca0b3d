"""Operations: health and readiness checks and the ops HTTP server (metrics, probes)."""
