"""Observability: Prometheus metrics, structured logs with request ids (neutral layer)."""
