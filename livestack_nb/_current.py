"""The current env: one slot, low in the layers, that every layer may read.

``spec.start()``, ``spec.op()`` and a spec registering itself need "the env
this cell uses" without importing the env module (which sits above them and
imports them). The slot holds the selection (``with env:``, ``use_env``) and
the process's default env; ``env.py`` hands the slot the factory that makes
a default env when it is imported, so nothing here calls up.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .env import LiveEnv
    from .spec import JobSpec

__all__ = ["current_env", "deselect", "forget_default", "register_spec", "select", "set_factory", "use_env"]

_selected: contextvars.ContextVar[LiveEnv | None] = contextvars.ContextVar("livestack_env", default=None)
_default: LiveEnv | None = None
_default_lock = threading.Lock()
_factory: Callable[[], LiveEnv] | None = None


def set_factory(factory: Callable[[], LiveEnv]) -> None:
    """Called once by ``env.py``: how the default env is made on first use."""
    global _factory
    _factory = factory


def current_env() -> LiveEnv:
    """The env selected by ``with env:`` or ``use_env``, else the default one.

    The default env is in memory and created on first use.
    """
    env = _selected.get()
    if env is not None and not env.closed:
        return env
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            if _factory is None:  # the package's __init__ imports env.py, which sets it
                raise RuntimeError("livestack_nb.env was never imported: no default env can be made")
            _default = _factory()
        return _default


def select(env: LiveEnv) -> contextvars.Token[LiveEnv | None]:
    """``with env:``: make ``env`` current in this context; returns the token to undo it."""
    return _selected.set(env)


def deselect(token: contextvars.Token[LiveEnv | None]) -> None:
    _selected.reset(token)


def forget_default(env: LiveEnv) -> None:
    """A closing env stops being the default (the next use makes a new one)."""
    global _default
    if _default is env:
        _default = None


def use_env(env: LiveEnv) -> _Selection:
    """Make ``env`` the default env of this process (also usable as ``with``)."""
    global _default
    previous = _default
    _default = env
    return _Selection(env, previous)


class _Selection:
    def __init__(self, env: LiveEnv, previous: LiveEnv | None) -> None:
        self.env = env
        self._previous = previous

    def __enter__(self) -> LiveEnv:
        return self.env

    def __exit__(self, *exc: object) -> None:
        global _default
        _default = self._previous


def register_spec(spec: JobSpec) -> None:
    """Register a newly declared spec in the current env (cheap: no threads)."""
    current_env().register(spec)
