"""End-to-end demonstrations run by ``hepflows demo`` (and ``make demo``)."""
