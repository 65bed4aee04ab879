"""Causette: a chat without registration, with the trust and safety layer built in."""

__version__ = "0.1.0"
