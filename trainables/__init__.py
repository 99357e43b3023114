"""Data, degradations, losses, metrics, Ray-free training loops and their Ray Tune adapters."""
