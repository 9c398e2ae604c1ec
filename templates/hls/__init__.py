"""Vivado HLS project templates."""
