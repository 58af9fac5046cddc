"""Amaranth-simulator tests of the gateware against the twin."""
