"""The checks fold's old address, kept only while tests/unit/test_store_crashes.py imports it from here.

The fold lives in agents/monitors/fold.py; import it from there.
"""
from agents.monitors.fold import CheckFolder

__all__ = ["CheckFolder"]
