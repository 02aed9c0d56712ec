"""``ConfigError``: a setting (an environment variable, an address) that cannot work."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A bad setting: an unknown ``MICRO_REGISTRY`` / ``MICRO_SELECTOR`` / ``MICRO_BROKER``
    name, a malformed ``host:port``. Its message is one line, meant for the user; a
    ``ValueError``, as these were before they had a type of their own."""
