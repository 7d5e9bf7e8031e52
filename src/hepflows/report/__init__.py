"""Plots and reports: HEP-style figures written atomically."""
