"""Latency on a device: `edgepose bench` (runner), its result schema, results DB, charts, device fingerprint."""
