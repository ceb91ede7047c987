"""Keys: ``ls.key_by`` to say what a value belongs to, and ``job.state`` to remember per key.

``ls.key_by("pizza")`` is a spec (it shows in the graph, runs in flows, in
workers and as ``.op()``) that emits each value as ``Keyed(key, value)``, so a
processor downstream reads ``for key, order in job.input``; it is also the key
function itself (``by_pizza(order) == "margherita"``) for a processor that
reads plain values, and a window's ``key=``.

``job.state`` is a mapping from key to whatever the processor keeps for it.
It belongs to the spec (its node, in a flow), not to one job: a new job of the
spec, also in a new process on the same durable vault, carries on where the
last one left off, the way a step's state does in Bytewax or an operator's in
Flink. With a durable vault every change is appended to a changelog stream in
the vault (``state/<spec>``): written at most a second behind while the job
runs, and whole once the job has ended (before ``job.wait()`` returns), or at
``job.state.flush()``. A restart replays the changelog (from its last
snapshot: a changelog grown well past the live keys is compacted into one).
Values are stored as JSON: numbers, strings, lists and dicts come back as
they went in (tuple keys as tuples), models as dicts. One process at a time
writes a spec's state: two processes running jobs of the same spec at once
on one vault would each append to the changelog from what they hold.

Memory is bounded by an eviction rule: at most ``max_keys`` keys (100,000 by
default; the least recently used goes first) and, if ``idle`` is set, no key
untouched for longer than ``idle`` seconds. An evicted key is forgotten, in
the vault too, and ``on_evict(key, value)`` (if given) is told first.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import LivestackError
from .spec import JobSpec

if TYPE_CHECKING:
    from .job import LiveJob

__all__ = ["KeyBy", "Keyed", "KeyedState", "field_getter", "key_by", "state_of"]


class Keyed(NamedTuple):
    """A value with its key, as ``ls.key_by`` emits it: unpacks as ``key, value``."""

    key: Any
    value: Any


def field_getter(field: str, where: str) -> Callable[[Any], Any]:
    """A function reading ``field`` of a value: a dict's key or an attribute."""

    def get(v: Any) -> Any:
        try:
            return v[field] if type(v) is dict else getattr(v, field)
        except (KeyError, AttributeError, TypeError):
            shown = repr(v)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise LivestackError(f"{where}: a value has no field {field!r}: {shown}") from None

    return get


class KeyBy(JobSpec):
    """The spec ``ls.key_by`` makes; calling it on a value gives that value's key."""

    def __init__(self, name: str, key: Callable[[Any], Any], input: Any) -> None:
        super().__init__(name, input=input, output=Keyed)
        self.key = key

        def key_by(value: Any) -> Keyed:
            return Keyed(key(value), value)

        key_by.__annotations__ = {"value": input, "return": Keyed}
        self.define_worker(key_by)

    def __call__(self, value: Any) -> Any:
        return self.key(value)


def key_by(key: str | Callable[[Any], Any], *, name: str | None = None, input: Any = Any) -> KeyBy:
    """A spec emitting each value as ``Keyed(key, value)``; also the key function itself.

    Parameters
    ----------
    key:
        A field name (a dict key or an attribute of a model) or a function of the value.
    name:
        The spec's name (default ``"key_by(<field>)"``).
    input:
        The input type (default: any value).

    Examples
    --------
    >>> by_pizza = key_by("pizza")
    >>> by_pizza({"pizza": "funghi", "size": 10})
    'funghi'
    """
    if isinstance(key, str):
        if not key:
            raise LivestackError("ls.key_by needs a field name or a function, not ''")
        label = key
        fn = field_getter(key, f"ls.key_by({key!r})")
    elif callable(key):
        label = getattr(key, "__name__", "fn")
        fn = key
    else:
        raise LivestackError(f"ls.key_by needs a field name or a function of the value, not {key!r}")
    spec = KeyBy(name or f"key_by({label})", fn, input)
    from ._current import register_spec

    register_spec(spec)
    return spec


# -- keyed state ----------------------------------------------------------------------

_IMMUTABLE = (int, float, str, bool, bytes, type(None), tuple, frozenset)
CHECKPOINT_EVERY = 1.0  # seconds: how far behind a running job's changelog may be
MAX_DIRTY = 4096  # changed keys that trigger a write before that


class KeyedState(MutableMapping[Any, Any]):
    """Per-key state of a spec: see the module docstring.

    ``state[key]`` reads (``KeyError`` when unknown), ``state.get(key,
    default)``, ``state[key] = value`` writes, ``del state[key]`` forgets. A
    value read and changed in place (a list appended to) is written back too.
    """

    def __init__(self, name: str, vault: Any = None) -> None:
        self.name = name
        self.stream_id = f"state/{name}"
        self._vault = vault if vault is not None and getattr(vault, "durable", False) else None
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._touched: dict[Any, float] = {}
        self._dirty: dict[Any, None] = {}
        self._lock = threading.RLock()
        self._seq = 0
        self._since_snapshot = 0
        self._last_write = time.monotonic()
        self._ops = 0
        self.max_keys = 100_000
        self.idle: float | None = None
        self.on_evict: Callable[[Any, Any], None] | None = None
        self.evicted = 0
        if self._vault is not None:
            self._restore()

    # -- configuration ----------------------------------------------------------

    def bound(
        self,
        max_keys: int | None = None,
        idle: float | None = None,
        on_evict: Callable[[Any, Any], None] | None = None,
    ) -> KeyedState:
        """Set the eviction rule: at most ``max_keys`` keys (least recently used
        evicted first), none untouched for more than ``idle`` seconds."""
        if max_keys is not None:
            if not isinstance(max_keys, int) or max_keys < 1:
                raise LivestackError(
                    f"state of {self.name!r}: max_keys must be an int >= 1, not {max_keys!r}"
                )
            self.max_keys = max_keys
        if idle is not None:
            if not isinstance(idle, (int, float)) or idle <= 0:
                raise LivestackError(
                    f"state of {self.name!r}: idle must be a number of seconds > 0, not {idle!r}"
                )
            self.idle = float(idle)
        if on_evict is not None:
            self.on_evict = on_evict
        with self._lock:
            self._evict(time.monotonic())
        return self

    # -- the mapping ----------------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        with self._lock:
            value = self._data[key]
            self._data.move_to_end(key)
            self._touched[key] = time.monotonic()
            if not isinstance(value, _IMMUTABLE):
                self._dirty[key] = None  # it may be changed in place
            return value

    def __setitem__(self, key: Any, value: Any) -> None:
        with self._lock:
            data = self._data
            data[key] = value
            data.move_to_end(key)
            now = time.monotonic()
            self._touched[key] = now
            self._dirty[key] = None
            self._ops += 1
            if len(data) > self.max_keys or (self.idle is not None and not self._ops % 256):
                self._evict(now)
            if len(self._dirty) >= MAX_DIRTY or (
                not self._ops % 256 and now - self._last_write >= CHECKPOINT_EVERY
            ):
                self._write()

    def __delitem__(self, key: Any) -> None:
        with self._lock:
            del self._data[key]
            self._touched.pop(key, None)
            self._dirty[key] = None

    def __iter__(self) -> Iterator[Any]:
        with self._lock:
            return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def clear(self) -> None:
        """Forget every key (in the vault too)."""
        with self._lock:
            for k in list(self._data):
                del self[k]

    def _evict(self, now: float) -> None:
        data, touched = self._data, self._touched
        gone: list[tuple[Any, Any]] = []
        while len(data) > self.max_keys:
            k, v = data.popitem(last=False)
            gone.append((k, v))
        if self.idle is not None:
            limit = now - self.idle
            while data:
                k = next(iter(data))
                if touched.get(k, now) > limit:
                    break
                gone.append((k, data.pop(k)))
        for k, v in gone:
            touched.pop(k, None)
            self._dirty[k] = None
            self.evicted += 1
            if self.on_evict is not None:
                self.on_evict(k, v)

    # -- durability -------------------------------------------------------------------

    def _restore(self) -> None:
        vault = self._vault
        assert vault is not None
        points = vault.datapoints(self.stream_id)
        data = self._data
        for p in points:
            rec = p.value
            if isinstance(rec, dict) and "snapshot" in rec:
                data.clear()
                for k, v in rec["snapshot"]:
                    data[_key(k)] = v
                self._since_snapshot = 0
            elif isinstance(rec, list) and len(rec) == 2:
                data[_key(rec[0])] = rec[1]
                self._since_snapshot += 1
            elif isinstance(rec, list) and len(rec) == 1:
                data.pop(_key(rec[0]), None)
                self._since_snapshot += 1
        now = time.monotonic()
        self._touched = dict.fromkeys(data, now)
        self._seq = points[-1].seq + 1 if points else 0

    def _write(self) -> None:
        """Append what changed since the last write to the changelog (the lock is held)."""
        self._last_write = time.monotonic()
        if self._vault is None or not self._dirty:
            self._dirty.clear()
            return
        from .vault.base import DatapointRecord

        dirty, self._dirty = self._dirty, {}
        data = self._data
        records: list[Any]
        if self._since_snapshot + len(dirty) > max(1_000, 4 * len(data)):
            records = [{"snapshot": [[k, v] for k, v in data.items()]}]
            self._since_snapshot = 0
        else:
            records = [[k, data[k]] if k in data else [k] for k in dirty]
            self._since_snapshot += len(records)
        t = time.time()
        seq0 = self._seq
        self._seq += len(records)
        self._vault.add_datapoints(
            [DatapointRecord(self.stream_id, seq0 + i, t, r) for i, r in enumerate(records)]
        )

    def flush(self) -> None:
        """Write every change now and make it durable (what a job's end also does)."""
        with self._lock:
            self._write()
        if self._vault is not None:
            self._vault.flush()

    def checkpoint(self, logger: logging.Logger | None = None) -> None:
        """Write what changed (a job of this spec ended); the env's flush makes it durable."""
        try:
            with self._lock:
                self._write()
        except Exception:
            (logger or logging.getLogger("livestack_nb")).exception(
                "state %r could not be written", self.name
            )

    def __repr__(self) -> str:
        where = "durable" if self._vault is not None else "in memory"
        return f"<KeyedState {self.name!r} {len(self._data)} keys, {where}>"


def _key(k: Any) -> Any:
    """A key read back from JSON: lists (tuples written as JSON) become tuples again."""
    return tuple(_key(x) for x in k) if isinstance(k, list) else k


_states: weakref.WeakKeyDictionary[Any, dict[str, KeyedState]] = weakref.WeakKeyDictionary()
_states_lock = threading.Lock()


def state_of(job: LiveJob) -> KeyedState:
    """The keyed state of ``job``'s spec (under its label in a flow), in its env."""
    spec, label = job.spec, job._life.label
    name = spec.name if label == spec.name else f"{spec.name}[{label}]"
    env = job.env
    with _states_lock:
        of_env = _states.setdefault(env, {})
        state = of_env.get(name)
        if state is None:
            state = of_env[name] = KeyedState(name, env.vault)
        return state
