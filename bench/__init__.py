"""Measured performance: side-by-side ratios (`python -m bench`, see bench/runner.py)."""
