"""Latency profiles per candidate (``run --profile``, ``modelport profile DIR``)."""
