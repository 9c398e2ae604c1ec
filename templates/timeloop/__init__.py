"""Timeloop v3.0.3 / Accelergy v0.4 input templates."""
