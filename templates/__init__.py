"""Jinja2 templates of the back-ends (package data)."""
