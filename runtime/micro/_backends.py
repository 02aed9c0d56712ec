"""A table of named backends, one of which an environment variable picks.

The registry (``MICRO_REGISTRY``), the broker (``MICRO_BROKER``), the selector
(``MICRO_SELECTOR``) and the transport (``MICRO_TRANSPORT``) each keep one. Names are
case-insensitive, and ``-`` and ``_`` do not count when one is looked up
(``round-robin`` finds ``roundrobin``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from micro._config import ConfigError

__all__ = ["Backends"]

T = TypeVar("T")

#: builds a backend from the environment mapping given to :meth:`Backends.from_env`
Factory = Callable[[Mapping[str, str]], T]


def _fold(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


class Backends(Generic[T]):
    def __init__(self, variable: str, default: str, factories: Mapping[str, Factory[T]]) -> None:
        self.variable = variable
        self.default = default
        self._factories: dict[str, tuple[str, Factory[T]]] = {}
        for name, factory in factories.items():
            self.register(name, factory)

    def register(self, name: str, factory: Factory[T]) -> None:
        """Make ``<variable>=<name>`` build a backend with ``factory(environ)``."""
        key = _fold(name)
        if not key:
            raise ValueError(f"a {self.variable} backend name must be non-empty")
        self._factories[key] = (name.strip().lower(), factory)

    def names(self) -> list[str]:
        """The names accepted in the variable."""
        return sorted(name for name, _ in self._factories.values())

    def check(self, environ: Mapping[str, str] = os.environ) -> None:
        """Raise :class:`ConfigError` if the variable names no backend; builds nothing."""
        self._find(environ)

    def _find(self, environ: Mapping[str, str]) -> Factory[T]:
        raw = environ.get(self.variable, "")
        found = self._factories.get(_fold(raw) or _fold(self.default))
        if found is None:
            raise ConfigError(
                f"unknown {self.variable}={raw!r}; valid values: {', '.join(self.names())} "
                f"(default: {self.default})"
            )
        return found[1]

    def from_env(self, environ: Mapping[str, str] = os.environ) -> T:
        """Build the backend the variable names (or the default); :class:`ConfigError` (a
        ``ValueError``) if unknown."""
        return self._find(environ)(environ)
