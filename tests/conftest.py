"""Shared fixtures: every test gets a fresh in-memory LiveEnv that must close cleanly."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest

import livestack_nb as ls
from livestack_nb.testing import wait_until


def _leftover_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads started since ``before`` that are still alive: livestack's own, or non-daemon ones."""
    return [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and (t.name.startswith("livestack") or not t.daemon)
    ]


@contextmanager
def closing_env(**kwargs: object) -> Iterator[ls.LiveEnv]:
    """A LiveEnv selected with ``with env:``, closed afterwards, leaving no thread behind."""
    before = set(threading.enumerate())
    env = ls.LiveEnv(**kwargs)
    try:
        with env:
            yield env
    finally:
        env.close()
    with suppress(ls.WaitTimeout):  # reported below, with the threads' names
        wait_until(lambda: not _leftover_threads(before), timeout=5)
    left = _leftover_threads(before)
    assert not left, f"threads left after env.close(): {[t.name for t in left]}"


@pytest.fixture
def env() -> Iterator[ls.LiveEnv]:
    with closing_env() as e:
        yield e


@pytest.fixture
def make_env() -> Iterator[Callable[..., ls.LiveEnv]]:
    """Factory for envs with custom arguments (history=, storage=, vault=); all closed at teardown."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield lambda **kwargs: stack.enter_context(closing_env(**kwargs))


@pytest.fixture
def comms() -> Iterator[list[object]]:
    """Widget comms recorded instead of sent; every widget is disposed and the pump stopped after."""
    from widget_support import recording_comms

    import livestack_nb.widgets as lw

    with recording_comms() as made:
        yield made
    lw.dispose_all()
    lw.pump.join()
    assert not lw.pump.running
