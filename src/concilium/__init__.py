"""Concilium: a self-hosted telemedicine platform for the hospitals of a region."""

__version__ = "0.1.0"
