"""User errors of the co-search front-end.

They extend `dnac.compiler.errors.DnacError`, so the CLI prints them as one line
(`dnac: error: <file>: <field>: <reason>`) and exits with status 2, like every other user error.
"""

from __future__ import annotations

from dnac.compiler.errors import DnacError


class ConfigError(DnacError):
    """A search / train configuration (YAML file, preset name or flag) is malformed."""


class DataError(DnacError):
    """A dataset that is not installed, or whose files are unreadable or the wrong shape."""


class CheckpointError(DnacError):
    """A checkpoint that cannot be resumed (missing, unreadable, made with another config)."""
