"""ls.key_by and job.state: keys as a spec and a function, per-key state in every kind of
processor, eviction, and durable state surviving a restart (real SQLite files, new processes,
a real redis-server and a worker process)."""

# ruff: noqa: F811 - the fixtures imported from redis_support are test parameters

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import reactivex
from redis_support import ROOT, TESTS, Worker, redis_server, redis_url, workers  # noqa: F401
from support import Recorder

import livestack_nb as ls
from livestack_nb.keys import KeyedState
from livestack_nb.testing import wait_until


def test_key_by_is_a_spec_and_the_key_function(env):
    by_pizza = ls.key_by("pizza")
    assert by_pizza({"pizza": "funghi"}) == "funghi"
    assert by_pizza.outputs == {"default": ls.Keyed}
    out = by_pizza.run([{"pizza": "a", "n": 1}], timeout=10)
    assert out == [ls.Keyed("a", {"pizza": "a", "n": 1})]
    key, value = out[0]
    assert key == "a" and value["n"] == 1
    by_len = ls.key_by(len, name="by-length")
    got = Recorder(reactivex.from_iterable(["ab", "c"]).pipe(by_len.op())).wait_done(10)
    assert got.values == [("ab".__len__(), "ab"), (1, "c")]


def test_key_by_refuses_what_is_not_a_key_and_names_a_missing_field(env):
    with pytest.raises(ls.LivestackError, match="field name or a function"):
        ls.key_by(3)  # type: ignore[arg-type]
    with pytest.raises(ls.JobFailed, match="no field 'pizza'"):
        ls.key_by("pizza").run([{"size": 12}], timeout=10)


def test_job_state_counts_per_key_in_sync_and_async_processors_and_across_jobs(env):
    from window_specs import running_totals

    flow = ls.Liveflow("totals")
    flow.connect(ls.key_by("pizza"), running_totals)
    orders = [{"pizza": p, "n": 1} for p in "aabab"]
    assert [r["so_far"] for r in flow.run(orders, timeout=10)] == [1, 2, 1, 3, 2]
    # the state belongs to the spec's node: the next run carries on
    assert [r["so_far"] for r in flow.run(orders[:2], timeout=10)] == [4, 5]

    @ls.job_spec(outputs={"default": int})
    async def async_counter(job: ls.LiveJob):
        async for word in job.input:
            job.state[word] = job.state.get(word, 0) + 1
            await job.output.emit(job.state[word])

    assert async_counter.run(["x", "y", "x"], timeout=10) == [1, 1, 2]


def test_state_is_bounded_by_max_keys_least_recently_used_first(env):
    state = KeyedState("lru")
    gone: list[tuple[str, int]] = []
    state.bound(max_keys=3, on_evict=lambda k, v: gone.append((k, v)))
    for i, k in enumerate("abcd"):
        state[k] = i
    assert sorted(state) == ["b", "c", "d"] and gone == [("a", 0)]
    _ = state["b"]  # read: now the most recent
    state["e"] = 4
    assert sorted(state) == ["b", "d", "e"] and gone[-1] == ("c", 2)
    assert state.evicted == 2
    with pytest.raises(ls.LivestackError, match="max_keys must be"):
        state.bound(max_keys=0)


def test_state_forgets_keys_idle_longer_than_its_bound(env):
    state = KeyedState("idle")
    state["old"] = 1
    state.bound(idle=0.05)

    def evicted() -> bool:
        state.bound()  # applies the rule now
        return "old" not in state

    wait_until(evicted, timeout=5)
    assert state.evicted == 1


CHILD = """
import sys
sys.path.insert(0, {tests!r})
import livestack_nb as ls
from window_specs import running_totals

env = ls.LiveEnv(vault=sys.argv[1])
with env:
    flow = ls.Liveflow("totals")
    flow.connect(ls.key_by("pizza"), running_totals)
    out = flow.run([dict(pizza=p, n=1) for p in sys.argv[2]], timeout=30)
    print(",".join(f"{{r['pizza']}}={{r['so_far']}}" for r in out))
env.close()
"""


def run_child(url: str, pizzas: str) -> str:
    code = CHILD.format(tests=str(TESTS))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), url, pizzas],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_durable_state_survives_a_restart_in_a_new_process(tmp_path):
    url = f"sqlite:///{tmp_path / 'kitchen.db'}"
    assert run_child(url, "aab") == "a=1,a=2,b=1"
    assert run_child(url, "ba") == "b=2,a=3"  # a new process carries on from the file
    assert run_child(f"sqlite:///{tmp_path / 'other.db'}", "a") == "a=1"  # another file, another state


def test_durable_state_keeps_deletes_evictions_tuple_keys_and_compacts(make_env, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    env = make_env(vault=url)
    state = KeyedState("kept", env.vault)
    state[("oven", 1)] = {"temp": 250}
    state["gone"] = 1
    del state["gone"]
    state.bound(max_keys=1_000)
    for i in range(30_000):  # evicts 29,000 and writes far more than the live keys: compacted
        state[f"k{i}"] = [i]
    state["k29999"].append("changed in place")
    state.flush()
    written = env.vault.count(state.stream_id)
    assert written < 4_100  # snapshots and the changes since, not a record per change (30,000)
    env.close()
    again = KeyedState("kept", make_env(vault=url).vault)
    assert len(again) == 1_000
    assert ("oven", 1) not in again  # evicted: the least recently used
    assert "gone" not in again and "k28999" not in again and again["k29000"] == [29000]
    assert again["k29999"] == [29999, "changed in place"]
    small = KeyedState("tuples", again._vault)
    small[("oven", 2)] = 3
    small.flush()
    assert KeyedState("tuples", again._vault)[("oven", 2)] == 3


def test_state_in_redis_is_read_back_by_a_new_env(make_env, redis_url):
    env = make_env(vault=redis_url)
    with env:
        from window_specs import running_totals

        flow = ls.Liveflow("totals-redis")
        flow.connect(ls.key_by("pizza"), running_totals)
        assert [r["so_far"] for r in flow.run([{"pizza": "a", "n": 2}], timeout=20)] == [2]
    env.close()
    again = make_env(vault=redis_url)
    with again:
        flow = ls.Liveflow("totals-redis")
        flow.connect(ls.key_by("pizza"), running_totals)
        assert [r["so_far"] for r in flow.run([{"pizza": "a", "n": 1}], timeout=20)] == [3]


def test_a_window_runs_in_a_worker_process(make_env, redis_url, workers):
    from window_specs import per_two

    env = make_env(vault=redis_url, autostart=False)
    workers.append(Worker("window_specs:per_two", redis_url))
    with env:
        job = per_two.start()
        job.feed_many([{"k": "a", "v": 1}, {"k": "b", "v": 5}, {"k": "a", "v": 2}])
        job.end()
        assert job.result(timeout=60) == [
            {"key": "a", "start": 0, "end": 2, "n": 2, "total": 3},
            {"key": "b", "start": 0, "end": 1, "n": 1, "total": 5},
        ]
    assert workers[0].stop() == 0
