"""Observability: Prometheus metrics (metrics.py, collector.py, views.py), the tick's log context and
JSON log lines (logs.py), and the instrumented runner that records both for every tick (instrument.py)."""
