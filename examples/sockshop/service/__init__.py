"""The demo carts service: a small HTTP server with Prometheus metrics and version-dependent latency."""
