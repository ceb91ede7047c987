"""The Redis vault's live side: followers on one reader thread, and the server's data.

Live followers (a notebook mirroring a job that runs elsewhere, a worker
reading a job's input) share one reader thread that blocks in ``XREAD`` on
every followed key; it also renews the leases this process holds (see
:mod:`._redis_queue`). A server that stops answering is retried with backoff;
once it answers again, ``{p}:epoch`` tells whether it kept its data, and if
not every :meth:`RedisFollowers.on_lost` callback is told.

A mixin of :class:`~livestack_nb.vault.redis.RedisVault`, which owns the
connection and the state set up in its ``__init__``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._redis_entries import as_str, decode_entry, status_record
from ._redis_lua import END_ID
from ._redis_part import RedisPart
from .base import BatchRecord, StatusRecord

__all__ = ["RedisFollowers"]

log = logging.getLogger("livestack_nb")


class RedisFollowers(RedisPart):
    """Following keys on the reader thread; noticing a server that lost its data."""

    if TYPE_CHECKING:  # what else of the vault this part uses (see RedisVault.__init__)
        reconnect_timeout: float
        _epoch_lock: threading.Lock
        _epoch: bytes
        _settled: threading.Event
        _lost_callbacks: list[Callable[[str], None]]
        losses: int
        _follows: dict[str, list[Any]]
        _follow_lock: threading.Lock
        _reader: threading.Thread | None
        _reader_name: str
        _wake_key: str
        _follows_changed: threading.Event

        def _renew_leases(self) -> None: ...

    # -- the server losing its data ---------------------------------------------------

    def _new_epoch(self) -> bytes:
        key = self.k("epoch")
        self._r.set(key, uuid.uuid4().hex, nx=True)
        got = self._r.get(key)
        return bytes(got) if got is not None else b""

    def on_lost(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(message)`` when the server is found to have lost what was
        recorded (it restarted without persistence); returns a function that stops it."""
        self._lost_callbacks.append(callback)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._lost_callbacks.remove(callback)

        return stop

    def check_epoch(self, *, wait: bool = False) -> bool:
        """After a lost connection: whether the server still has this process's data.

        If it has not (it restarted without persistence), every :meth:`on_lost`
        callback is told what was lost, and a new epoch starts, so the vault
        serves new jobs. Returns ``False`` then. With ``wait``, a call that finds
        another thread telling the callbacks returns once they are done (so what
        they dropped is not taken for something else): never from a thread they
        may wait on, such as the writer's.
        """
        with self._epoch_lock:
            try:
                now = self._r.get(self.k("epoch"))
            except Exception:  # unreachable again: the next reconnection checks
                now = self._epoch
            lost = now is None or bytes(now) != self._epoch
            if lost:
                self._epoch = self._new_epoch()
                self.losses += 1
                callbacks = list(self._lost_callbacks)
                self._settled.clear()
        if not lost:
            if wait:
                self._settled.wait(30)
            return True
        message = (
            f"{self._label}: the server restarted without the data recorded before (it keeps none: "
            "no appendonly/save); the jobs it held, their input, outputs, statuses and queue "
            "messages, are gone"
        )
        log.error("%s", message)
        try:
            self._tell_lost(callbacks, message)
        finally:
            self._settled.set()
        return False

    def _tell_lost(self, callbacks: list[Callable[[str], None]], message: str) -> None:
        for cb in callbacks:
            try:
                cb(message)
            except Exception:
                log.exception("%s: a callback on lost data failed", self._label)

    # -- live followers -----------------------------------------------------------------

    def follow(
        self, key: str, handler: Callable[[list[tuple[str, Mapping[Any, Any]]]], None]
    ) -> Callable[[], None]:
        """Call ``handler`` on the reader thread with every entry of stream ``key``, from the first.

        Returns a function that stops following. ``handler`` gets entries in
        id order, ``(id, fields)``; it must not block for long (every follower
        shares the thread).
        """
        token = [b"0-0", handler]
        with self._follow_lock:
            if self._closed:
                raise self._fail("is closed")
            self._follows[key] = token
        self._ensure_reader()
        self._wake()

        def stop() -> None:
            with self._follow_lock:
                if self._follows.get(key) is token:
                    del self._follows[key]

        return stop

    def _ensure_reader(self) -> None:
        with self._follow_lock:
            if self._reader is None and not self._closed:
                self._reader = threading.Thread(target=self._read_loop, name=self._reader_name, daemon=True)
                self._reader.start()

    def _wake(self) -> None:
        self._follows_changed.set()
        try:
            self._r.xadd(self._wake_key, {"w": "1"}, maxlen=1)
        except Exception as e:  # the reader still sees the new key within its block time
            log.debug("redis vault %r: could not wake the reader: %s", self.url, e)

    def following(self, key: str) -> bool:
        return key in self._follows

    def _read_loop(self) -> None:
        """Follow, and renew the leases held; on a lost server, retry with backoff (and tell
        whoever waits on it once it has been gone ``reconnect_timeout`` seconds)."""
        import redis

        conn = self._r
        wake = self._wake_key
        wake_id: Any = "0-0"  # its last entry seen: a wake-up sent before XREAD is not missed
        failing_since: float | None = None
        given_up = False
        delay = 0.05
        while not self._stopping:
            self._follows_changed.clear()
            with self._follow_lock:
                follows = {k: v[0] for k, v in self._follows.items()}
            try:
                self._renew_leases()
                if not follows:
                    if failing_since is None:
                        self._follows_changed.wait(0.1)
                        continue
                    conn.ping()  # nothing followed: see whether the server is back
                    got = None
                else:
                    follows[wake] = wake_id
                    got = conn.xread(follows, count=256, block=100)
            except redis.RedisError as e:
                if self._stopping:
                    return
                now = time.monotonic()
                if failing_since is None:
                    failing_since = now
                    log.warning("redis vault %r: reading followed streams failed (%s); retrying", self.url, e)
                if not given_up and now - failing_since >= self.reconnect_timeout:
                    given_up = True
                    self._tell_lost(
                        list(self._lost_callbacks),
                        f"{self._label}: the server has been unreachable for {now - failing_since:.0f} s "
                        f"(reconnect_timeout); what waits on it is given up",
                    )
                self._follows_changed.wait(delay)
                delay = min(1.0, delay * 2)
                continue
            if failing_since is not None:
                failing_since, given_up, delay = None, False, 0.05
                self._leases_renewed = 0.0  # renewed at once: they may have lapsed meanwhile
                if not self.check_epoch():
                    continue  # what is followed is gone; the callbacks stopped following it
            for key_b, entries in got or ():
                key = as_str(key_b)
                if key == wake:
                    wake_id = entries[-1][0] if entries else wake_id
                    continue
                with self._follow_lock:
                    token = self._follows.get(key)
                if token is None or not entries:
                    continue
                token[0] = entries[-1][0]
                try:
                    token[1]([(as_str(i), f) for i, f in entries])
                except Exception:
                    log.exception("redis vault %r: a follower of %r failed", self.url, key)

    # -- the queue contract's followers (see livestack_nb.vault.queue) ----------------------

    def follow_stream(
        self,
        stream_id: str,
        value_type: Any,
        on_batch: Callable[[BatchRecord], None] | None,
        on_end: Callable[[], None] | None,
    ) -> Callable[[], None]:
        """Call ``on_batch`` with every batch of ``stream_id`` from the first (decoded by
        ``value_type``), then ``on_end`` when its end marker comes; returns a stop function."""

        def handle(entries: list[tuple[str, Mapping[Any, Any]]]) -> None:
            for entry_id, fields in entries:
                if entry_id == END_ID:
                    if on_end is not None:
                        on_end()
                    continue
                if on_batch is not None:
                    for b in decode_entry(stream_id, fields, value_type):
                        on_batch(b)

        return self.follow(self.stream_key(stream_id), handle)

    def follow_statuses(self, job_id: str, on_status: Callable[[StatusRecord], None]) -> Callable[[], None]:
        """Call ``on_status`` with every status of ``job_id`` from the first; returns a stop function."""

        def handle(entries: list[tuple[str, Mapping[Any, Any]]]) -> None:
            for _, fields in entries:
                on_status(status_record(job_id, fields))

        return self.follow(self.status_key(job_id), handle)
