"""The background event loop each env runs ``async`` processors on.

A notebook's own loop belongs to the kernel and is busy running cells, so jobs
get a loop of their own in a daemon thread, started on first use and stopped
(and joined) by ``env.close()``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ._interrupt import held_interrupts

__all__ = ["Runtime"]

T = TypeVar("T")


class Runtime:
    """A lazily started asyncio loop in a thread named ``livestack-loop-<name>``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop, started on first use."""
        with self._lock:
            if self._loop is None:
                # Held: a loop thread started but not kept here would run for ever.
                with held_interrupts():
                    loop = asyncio.new_event_loop()
                    ready = threading.Event()

                    def run() -> None:
                        asyncio.set_event_loop(loop)
                        loop.call_soon(ready.set)
                        loop.run_forever()

                    thread = threading.Thread(target=run, name=f"livestack-loop-{self.name}", daemon=True)
                    thread.start()
                    self._thread = thread
                    self._loop = loop
                    ready.wait()
            return self._loop

    @property
    def started(self) -> bool:
        return self._loop is not None

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the loop; returns a thread-safe future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel what still runs, stop the loop and join its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await loop.shutdown_asyncgens()

        if thread is threading.current_thread():
            loop.stop()
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()
