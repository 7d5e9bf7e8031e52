"""hepflows: normalizing flows and flow matching for fast, validated particle-physics simulation."""

__version__ = "0.1.0"
