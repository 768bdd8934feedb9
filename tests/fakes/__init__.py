"""Test doubles that speak real protocols: fake HTTP servers with the request and response shapes of
the Kubernetes API, Unleash's admin API and webhook receivers, plus small helpers for connector tests."""
