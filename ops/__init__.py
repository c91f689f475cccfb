"""Operating the service: health and readiness probes, request ids, structured logs, metrics."""
