"""The SQLite vault: what survives a restart, a kill, and a second process.

Every test uses a real SQLite file in ``tmp_path``; the guarantees about
killed processes are checked with real child processes.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pizzeria import Order, bake
from pydantic import BaseModel, ConfigDict

import livestack_nb as ls
from livestack_nb.testing import collect, wait_until
from livestack_nb.vault.sqlite import SCHEMA_VERSION, SQLiteVault

ROOT = Path(__file__).resolve().parent.parent


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def run_child(code: str, *args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new Python process (the package importable) and return it."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def start_child(code: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


CHILD_HEAD = """
import os, signal, sys
import livestack_nb as ls

db = sys.argv[1]
env = ls.LiveEnv(vault="sqlite:///" + db, history=50)
env.__enter__()

@ls.job_spec
def square(x: int) -> int:
    return x * x

@ls.job_spec(inputs={"default": int}, outputs={"default": int})
def count_up(job: ls.LiveJob):
    for i in job.input:
        while True:  # emits until the process dies
            job.output.emit(i)
            i += 1
"""


# -- in one process -------------------------------------------------------------


def test_jobs_statuses_and_outputs_survive_reopening(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    first = make_env(vault=url(db))
    job = bake.start(options={"spice": 1})
    job.feed_many([{"pizza": "margherita"}, {"pizza": "funghi", "size": 10}])
    job.end()
    job.wait(timeout=10)
    first.close()

    again = make_env(vault=url(db))
    (info,) = again.jobs()
    assert (info.job_id, info.spec, info.status) == (job.job_id, "bake", "completed")
    assert info.options == {"spice": 1}
    handle = again.job(job.job_id)
    assert handle.status is ls.JobStatus.COMPLETED
    assert [s for s, _ in handle.statuses] == ["requested", "running", "completed"]
    assert handle.output().values() == ["12in margherita, spice 1", "10in funghi, spice 1"]
    # typed once the spec is known here (registered; or the newest "bake" defined in the process)
    again.register(bake)
    handle = again.job(job.job_id)
    assert handle.input().stream.values() == [Order(pizza="margherita"), Order(pizza="funghi", size=10)]
    handle.wait(timeout=1)  # a completed stored job: nothing to wait for, no error


def test_stored_values_come_back_typed_when_the_spec_is_registered(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    first = make_env(vault=url(db))
    job = bake.start()
    job.feed({"pizza": "diavola"})
    job.end()
    job.wait(timeout=10)
    first.close()

    again = make_env(vault=url(db))
    again.register(bake)
    assert again.job(job.job_id).input().stream.values() == [Order(pizza="diavola")]


def test_replay_reads_beyond_the_memory_bound_without_gaps_or_duplicates(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    env = make_env(vault=url(db), history=10)

    @ls.job_spec
    def plus_one(x: int) -> int:
        return x + 1

    job = plus_one.start()
    for i in range(0, 3000, 7):  # many chunks of several sizes
        job.feed_many(list(range(i, min(i + 7, 3000))))
    job.feed(3000)
    job.end()
    job.wait(timeout=20)
    out = job.output()
    assert len(out) == 3001 and out.values() == list(range(1, 3002))  # whole, from the file
    assert out.values(last=10) == list(range(2992, 3002))
    assert collect(out.replay()) == list(range(1, 3002))
    env.close()

    again = make_env(vault=url(db), history=10)
    stored = again.job(job.job_id).output()
    assert len(stored) == 3001
    assert stored.values() == list(range(1, 3002))
    assert stored.values(last=10) == list(range(2992, 3002))
    assert collect(stored.replay()) == list(range(1, 3002))
    ids = [p.id for p in stored.datapoints(last=10)]
    assert ids == [f"{stored.stream_id}:{i}" for i in range(2991, 3001)]
    assert len(stored.datapoints()) == 3001
    source = again.job(job.job_id).input().stream.stream_id
    assert [p.parents for p in stored.datapoints(last=10)] == [(f"{source}:{i}",) for i in range(2991, 3001)]


def test_lineage_and_parent_child_jobs_are_recorded(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    env = make_env(vault=url(db))

    @ls.job_spec
    def double(x: int) -> int:
        return 2 * x

    @ls.job_spec
    def odd_only(x: int) -> int | None:
        return x + 1 if x % 4 else None

    flow = ls.Liveflow("lineage")
    flow.connect(double, odd_only)
    run = env.start(flow)
    run.feed_many([1, 2, 3])
    run.end()
    run.wait(timeout=10)
    env.close()

    again = make_env(vault=url(db))
    children = again.vault.children(run.job_id)
    assert sorted(again.vault.job(c).spec for c in children) == ["double", "odd_only"]
    out = again.job(run.job_id).output()
    assert out.values() == [3, 7]
    (doubled,) = [c for c in children if again.vault.job(c).spec == "double"]
    doubled_out = again.job(doubled).output()
    # 2*1 -> 3 and 2*3 -> 7 come from the 1st and 3rd doubled values
    assert [p.parents for p in out.datapoints()] == [
        (f"{doubled_out.stream_id}:0",),
        (f"{doubled_out.stream_id}:2",),
    ]


def test_large_values_stay_in_storage_as_references(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    storage = tmp_path / "blobs"
    env = make_env(vault=url(db), storage=str(storage), large_value_threshold=100)

    @ls.job_spec
    def shout(text: str) -> str:
        return text.upper()

    big = "x" * 5000
    job = shout.start()
    job.feed_many(["small", big])
    job.end()
    job.wait(timeout=10)
    env.close()

    con = sqlite3.connect(db)
    payloads = [bytes(r[0]) for r in con.execute("SELECT payload FROM datapoints")]
    con.close()
    assert all(len(p) < 200 for p in payloads)  # references, not the 5000 characters
    again = make_env(vault=url(db), storage=str(storage))
    assert again.job(job.job_id).output().values() == ["SMALL", big.upper()]
    assert collect(again.job(job.job_id).output().replay()) == ["SMALL", big.upper()]


def test_validation_failures_are_recorded(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    env = make_env(vault=url(db))
    job = bake.start()
    with pytest.raises(ls.DataValidationError):
        job.feed({"size": 10})
    job.cancel()
    env.close()

    again = make_env(vault=url(db))
    (failure,) = again.validation_failures(job.job_id)
    assert (failure.spec, failure.tag, failure.field) == ("bake", "default", "pizza")
    assert "Field required" in failure.message
    assert [j.status for j in again.jobs()] == ["cancelled"]


def test_a_stored_unfinished_job_cannot_be_waited_for(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    vault = SQLiteVault(db)
    vault.add_job(ls.vault.JobRecord("bake-1", "bake", "requested", created=1.0))
    vault.add_status(ls.vault.StatusRecord("bake-1", "running", 2.0))
    vault.close()

    env = make_env(vault=url(db))
    handle = env.job("bake-1")
    assert handle.status is ls.JobStatus.RUNNING and not handle.done
    with pytest.raises(ls.LivestackError, match="last recorded running"):
        handle.wait(timeout=1)
    handle.cancel()  # only the process running a job appends its statuses
    env.flush()
    assert [s.status for s in env.vault.statuses("bake-1")] == ["requested", "running"]


def test_unknown_job_id_is_a_clear_error(make_env, tmp_path):
    env = make_env(vault=url(tmp_path / "kitchen.db"))
    with pytest.raises(ls.LivestackError, match="no job 'nope'"):
        env.job("nope")


def test_close_stops_the_writer_and_later_writes_are_refused(tmp_path):
    vault = SQLiteVault(tmp_path / "kitchen.db")
    writer = vault._writer
    vault.close()
    vault.close()
    assert not writer.is_alive()
    with pytest.raises(ls.LivestackError, match="closed"):
        vault.add_job(ls.vault.JobRecord("x", "s", "requested"))


# -- bad files ----------------------------------------------------------------------


def test_a_file_that_is_not_sqlite_is_a_clear_error_and_stays_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(ls.LivestackError, match="is not an SQLite database") as info:
        ls.LiveEnv(vault=url(path))
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_another_applications_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (name TEXT)")
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(ls.LivestackError, match="another application") as info:
        ls.LiveEnv(vault=url(path))
    assert str(path) in str(info.value)
    assert path.read_bytes() == before  # not even switched to WAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


@pytest.mark.parametrize(("version", "word"), [(SCHEMA_VERSION + 1, "newer"), (SCHEMA_VERSION - 1, "older")])
def test_another_schema_version_is_a_clear_error_not_corruption(tmp_path, version, word):
    path = tmp_path / "kitchen.db"
    SQLiteVault(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version={version}")
    con.close()
    before = path.read_bytes()
    with pytest.raises(ls.LivestackError, match=f"schema version {version}.*{word}") as info:
        ls.LiveEnv(vault=url(path))
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_an_unwritable_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ls.LivestackError, match="cannot create its directory") as info:
        ls.LiveEnv(vault=url(blocker / "kitchen.db"))
    assert str(blocker / "kitchen.db") in str(info.value)
    with pytest.raises(ls.LivestackError, match="is a directory") as info:
        ls.LiveEnv(vault=url(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_unknown_vault_urls_name_what_works():
    with pytest.raises(ls.LivestackError, match=r"sqlite:///path\.db"):
        ls.LiveEnv(vault="postgres://x")
    with pytest.raises(ls.LivestackError, match="names no file"):
        ls.LiveEnv(vault="sqlite:///:memory:")


# -- with real processes -------------------------------------------------------------


def test_after_wait_returns_a_sigkill_loses_nothing(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    child = run_child(
        CHILD_HEAD
        + """
job = square.start()
job.feed_many(range(5000))
job.end()
job.wait(timeout=60)
print(job.job_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
""",
        db,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    job_id = child.stdout.strip()
    env = make_env(vault=url(db), history=50)
    (info,) = env.jobs()
    assert (info.job_id, info.status) == (job_id, "completed")
    out = env.job(job_id).output()
    assert len(out) == 5000
    assert collect(out.replay()) == [x * x for x in range(5000)]


def test_after_env_flush_an_os_exit_loses_nothing_and_the_job_is_not_completed(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    child = run_child(
        CHILD_HEAD
        + """
from livestack_nb.testing import wait_until
job = square.start()
job.feed_many(range(3000))           # no end(): the job is still running when the process dies
wait_until(lambda: len(job.output()) == 3000, timeout=60)
env.flush()
print(job.job_id, flush=True)
os._exit(3)
""",
        db,
    )
    assert child.returncode == 3, child.stderr
    job_id = child.stdout.strip()
    env = make_env(vault=url(db), history=50)
    (info,) = env.jobs()
    assert (info.job_id, info.status) == (job_id, "running")
    handle = env.job(job_id)
    assert not handle.done
    assert collect(handle.output().replay()) == [x * x for x in range(3000)]
    assert collect(handle.input().stream.replay()) == list(range(3000))


def test_a_job_killed_mid_run_is_not_completed_and_what_was_stored_has_no_gaps(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    marker = tmp_path / "started"
    proc = start_child(
        CHILD_HEAD
        + """
from livestack_nb.testing import wait_until
job = count_up.start()
job.feed(0)
wait_until(lambda: len(job.output()) > 20_000, timeout=60)
env.flush()
open(sys.argv[2], "w").write(job.job_id)
wait_until(lambda: False, timeout=600)   # keeps emitting until killed
""",
        db,
        marker,
    )
    try:
        wait_until(marker.exists, timeout=60, message="the child started emitting")
        wait_until(lambda: marker.read_text(), timeout=10)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    job_id = marker.read_text()
    env = make_env(vault=url(db), history=50)
    (info,) = env.jobs()
    assert info.job_id == job_id and info.status in ("running", "requested")
    handle = env.job(job_id)
    assert handle.status is not ls.JobStatus.COMPLETED
    values = collect(handle.output().replay())
    assert len(values) >= 20_000  # at least what was flushed before the marker
    assert values == list(range(len(values)))  # a prefix: no gap, no duplicate
    assert len(handle.output()) == len(values)
    with pytest.raises(ls.LivestackError, match="nothing to wait for"):
        handle.wait(timeout=1)


def test_two_processes_writing_one_file_at_once_do_not_corrupt_it(make_env, tmp_path):
    db = tmp_path / "shared.db"
    code = (
        CHILD_HEAD
        + """
import json
ids = []
for k in range(20):
    job = square.start()
    for i in range(0, 2000, 100):
        job.feed_many(range(i, i + 100))
    job.end()
    job.wait(timeout=60)
    ids.append(job.job_id)
    env.flush()
print(json.dumps(ids), flush=True)
env.close()
"""
    )
    procs = [start_child(code, db) for _ in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    env = make_env(vault=url(db))
    infos = {j.job_id: j.status for j in env.jobs()}
    assert sorted(infos) == sorted(outs[0] + outs[1])
    assert set(infos.values()) == {"completed"}
    for job_id in outs[0][:3] + outs[1][-3:]:
        assert collect(env.job(job_id).output().replay()) == [x * x for x in range(2000)]


def test_a_failed_write_stops_later_writes_so_no_stream_gets_a_gap(tmp_path, monkeypatch):
    db = tmp_path / "kitchen.db"
    vault = SQLiteVault(db)
    record = vault.recorder("s", "default", int)

    def chunk(seq0: int) -> SimpleNamespace:
        return SimpleNamespace(
            seq0=seq0,
            time=1.0,
            stored=[seq0, seq0 + 1],
            offloaded=False,
            parent_stream=None,
            parent_seqs=None,
        )

    def fail(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(vault, "_commit", fail)
    record(chunk(0))
    with pytest.raises(ls.LivestackError, match=r"writing failed.*disk I/O error") as info:
        vault.flush()
    assert str(db) in str(info.value)
    monkeypatch.undo()
    record(chunk(2))  # would follow a lost batch: never written
    with pytest.raises(ls.LivestackError, match="writing failed"):
        vault.flush()
    with pytest.raises(ls.LivestackError):
        vault.close()
    assert not vault._writer.is_alive()
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM datapoints").fetchone()[0] == 0
    con.close()


def test_a_value_without_a_json_form_is_stored_as_its_repr_never_pickled(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    env = make_env(vault=url(db))

    class Oddity:
        def __repr__(self) -> str:
            return "<oddity>"

    @ls.job_spec
    def wrap(x: int):  # output type Any
        return Oddity() if x == 2 else {"x": x}

    job = wrap.start()
    job.feed_many([1, 2, 3])
    job.end()
    job.wait(timeout=10)
    env.close()

    again = make_env(vault=url(db))
    assert again.job(job.job_id).output().values() == [{"x": 1}, "<oddity>", {"x": 3}]


def stored_values(db: Path) -> int:
    """Values committed to the file, read by an independent connection."""
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT coalesce(sum(n), 0) FROM datapoints").fetchone()[0])
    finally:
        con.close()


def test_write_behind_commits_by_interval_without_a_flush(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    make_env(vault=SQLiteVault(db, interval=0.05, batch_values=10**9))
    job = bake.start()
    job.feed_many([{"pizza": str(i)} for i in range(10)])
    # 10 inputs + 10 outputs, written by the interval alone
    wait_until(lambda: stored_values(db) == 20, timeout=10, message="the interval write")


def test_write_behind_commits_by_size_without_a_flush(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    make_env(vault=SQLiteVault(db, interval=3600, batch_values=1000))
    job = bake.start()
    job.feed_many([{"pizza": str(i)} for i in range(3000)])
    wait_until(lambda: stored_values(db) >= 3000, timeout=10, message="the size-triggered write")


def test_a_producer_far_ahead_of_the_writer_waits_for_room_and_loses_nothing(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    make_env(vault=SQLiteVault(db, batch_values=50, max_backlog=200), history=10)

    @ls.job_spec
    def plus_one(x: int) -> int:
        return x + 1

    job = plus_one.start()
    for i in range(0, 20_000, 100):
        job.feed_many(list(range(i, i + 100)))
    job.end()
    job.wait(timeout=60)
    assert collect(job.output().replay()) == list(range(1, 20_001))
    assert stored_values(db) == 40_000  # input and output, each value once


def test_wait_raises_when_the_vault_could_not_write_the_job(make_env, tmp_path, monkeypatch):
    db = tmp_path / "kitchen.db"
    vault = SQLiteVault(db)

    def fail(*args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(vault, "_commit", fail)
    env = make_env(vault=vault)
    job = bake.start()
    job.feed({"pizza": "x"})
    job.end()
    with pytest.raises(ls.LivestackError, match=r"writing failed.*disk is full"):
        job.wait(timeout=10)
    assert job.status is ls.JobStatus.COMPLETED  # the job itself ended; its record did not
    with pytest.raises(ls.LivestackError, match="writing failed"):
        env.flush()
    with pytest.raises(ls.LivestackError, match="writing failed"):
        env.close()


def test_a_failed_job_reads_back_failed_with_its_traceback(make_env, tmp_path):
    db = tmp_path / "kitchen.db"
    env = make_env(vault=url(db))

    @ls.job_spec
    def burn(x: int) -> int:
        raise ValueError(f"burnt pizza {x}")

    job = burn.start()
    job.feed(7)
    job.end()
    with pytest.raises(ls.JobFailed):
        job.wait(timeout=10)
    env.close()

    again = make_env(vault=url(db))
    handle = again.job(job.job_id)
    assert handle.status is ls.JobStatus.FAILED
    assert "ValueError: burnt pizza 7" in handle.traceback
    with pytest.raises(ls.JobFailed, match="ValueError: burnt pizza 7") as info:
        handle.wait(timeout=1)
    assert info.value.job_id == job.job_id


def test_a_value_with_no_json_form_does_not_stop_the_vault(make_env, tmp_path):
    db = f"sqlite:///{tmp_path / 'v.db'}"
    env = make_env(vault=db)

    @ls.job_spec(name="odd", output=Any)
    def odd(n: int) -> Any:
        return object() if n == 0 else n

    first = odd.start(env=env)
    first.feed_many([0, 1])  # one chunk: an object() with no JSON form, and a 1
    first.end()
    first.wait(timeout=10)
    second = odd.start(env=env)
    second.feed(2)
    second.end()
    second.wait(timeout=10)  # the vault still writes after the odd value
    env.close()
    again = make_env(vault=db)
    kept = again.job(first.job_id).output().values()
    assert kept[0].startswith("<object object at") and kept[1] == 1  # its repr(), and the rest as written
    assert again.job(second.job_id).output().values() == [2]


def test_bytes_and_nan_inside_a_model_read_back_as_written(make_env, tmp_path):
    class Blob(BaseModel):
        raw: bytes
        level: float = 0.0

    db = f"sqlite:///{tmp_path / 'v.db'}"
    env = make_env(vault=db)

    @ls.job_spec(name="blob")
    def blob(b: Blob) -> Blob:
        return b

    job = blob.start(env=env)
    job.feed(Blob(raw=b"\xff\x00", level=float("inf")))  # not UTF-8; pydantic's own JSON would fail
    job.end()
    job.wait(timeout=10)
    env.close()
    again = make_env(vault=db)
    assert again.job(job.job_id).output().values() == [Blob(raw=b"\xff\x00", level=float("inf"))]


class _Client:
    """Stands for an object with no JSON form, such as a database client."""


class _ClientOptions(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    client: _Client | None = None


def _echo_with_options(env: ls.LiveEnv) -> ls.JobSpec:
    with env:

        @ls.job_spec(name="with-client", options=_ClientOptions)
        def echo(x: int, options: _ClientOptions) -> int:
            return x

    return echo


def test_options_with_no_json_form_are_refused_at_start_and_nothing_is_recorded(make_env, tmp_path):
    db = tmp_path / "v.db"
    env = make_env(vault=url(db))
    echo = _echo_with_options(env)
    with pytest.raises(ls.LivestackError, match=r"spec 'with-client': options _ClientOptions .*JSON"):
        echo.start(env=env, options=_ClientOptions(client=_Client()))
    assert env.jobs() == []  # no half-made job left behind
    job = echo.start(env=env)  # the env and its writer go on
    job.feed(3)
    job.end()
    job.wait(timeout=10)
    env.close()
    (info,) = make_env(vault=url(db)).jobs()
    assert (info.job_id, info.status, info.options) == (job.job_id, "completed", {"client": None})


def test_the_memory_vault_keeps_options_with_no_json_form(make_env):
    env = make_env()
    echo = _echo_with_options(env)
    client = _Client()
    job = echo.start(env=env, options=_ClientOptions(client=client))
    job.feed(3)
    job.end()
    job.wait(timeout=10)
    assert job.result() == [3]
    (info,) = env.jobs()
    assert info.options == {"client": client}  # nothing leaves the process
