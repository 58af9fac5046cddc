"""Gateware helpers: fixed-point arithmetic, stream register slices, clock gating, checked
constructors."""
