"""job.feed_from(iterable): a background feed that returns at once, with progress, cancel and errors."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

import livestack_nb as ls
from livestack_nb.feeding import feedings_of
from livestack_nb.testing import livestack_threads, wait_until


class Order(BaseModel):
    pizza: str
    size: int = 12


def _echo(tp: object, name: str) -> ls.JobSpec:
    spec = ls.JobSpec(name, input=tp, output=tp)
    spec.define_worker(lambda v: v)
    return spec


def test_feed_from_returns_at_once_and_feeds_from_its_own_thread(env):
    job = _echo(int, "held").start()
    release = threading.Event()

    def slow() -> Iterator[int]:
        yield 1
        release.wait(10)  # the cell would be held here by feed_many
        yield from range(2, 5)

    feeding = job.feed_from(slow())
    assert not feeding.done and feeding.state == "feeding"  # the call came back while the generator waits
    wait_until(lambda: feeding.count == 1, timeout=5)  # a lone value is not held back for company
    wait_until(lambda: job.output().values() == [1], timeout=5)
    release.set()
    feeding.wait(timeout=10)
    assert (feeding.state, feeding.count, feeding.total) == ("done", 4, None)
    job.end()
    assert job.result(timeout=10) == [1, 2, 3, 4]


def test_200k_values_all_fed_in_order_with_progress_and_no_thread_left(env):
    job = _echo(int, "many").start()
    seen: list[int] = []
    job.output().subscribe(seen.append)
    feeding = job.feed_from(range(200_000), end=True)
    assert feeding.total == 200_000
    job.wait(timeout=60)  # end=True ended the input once they were used up
    feeding.wait(timeout=10)
    assert seen == list(range(200_000))
    p = feeding.progress()
    assert (p["state"], p["count"], p["total"], p["eta"], p["error"]) == ("done", 200_000, 200_000, 0.0, "")
    assert p["rate"] > 0
    assert feedings_of(job.input().stream) == [feeding]
    wait_until(lambda: not [t for t in livestack_threads() if t.name.startswith("livestack-feed")], timeout=5)


def test_eta_while_feeding_when_the_length_is_known(env):
    job = _echo(int, "eta").start()
    gate = threading.Semaphore(0)

    class Paced:
        def __len__(self) -> int:
            return 100

        def __iter__(self) -> Iterator[int]:
            for i in range(100):
                gate.acquire()
                yield i

    feeding = job.feed_from(Paced())
    for _ in range(50):
        gate.release()
    wait_until(lambda: feeding.count >= 40, timeout=10)
    assert feeding.total == 100 and feeding.eta is not None and feeding.eta > 0
    assert "/100" in repr(feeding)
    for _ in range(50):
        gate.release()
    feeding.wait(timeout=10)
    job.cancel()


def test_cancel_stops_the_feed_and_leaves_the_input_open(env):
    job = _echo(int, "endless").start()
    feeding = job.feed_from(itertools.count())
    wait_until(lambda: feeding.count > 1000, timeout=10)
    feeding.cancel()
    feeding.wait(timeout=10)
    assert feeding.state == "cancelled"
    fed = feeding.count
    assert len(job.input().stream) == fed  # what was fed stays fed, nothing after
    job.feed(-1)  # the input is still open
    job.end()
    job.wait(timeout=30)
    assert job.output().values(last=1) == [-1]


def test_a_value_that_does_not_fit_stops_the_feed_and_is_kept_on_the_handle(env):
    job = _echo(Order, "orders").start()
    values = [{"pizza": "funghi"}] * 5 + [{"pizza": "bad", "size": "huge"}]
    feeding = job.feed_from(values, chunk=5)
    with pytest.raises(ls.DataValidationError, match="field 'size'"):
        feeding.wait(timeout=10)
    assert feeding.state == "failed" and "DataValidationError" in feeding.progress()["error"]
    assert feeding.count == 5 and len(job.input().stream) == 5  # the bad chunk fed nothing
    job.end()
    job.wait(timeout=10)


def test_an_iterable_that_raises_and_an_ended_input_are_kept_on_the_handle(env):
    job = _echo(int, "raising").start()

    def broken() -> Iterator[int]:
        yield 1
        raise RuntimeError("the source broke")

    feeding = job.feed_from(broken())
    with pytest.raises(RuntimeError, match="the source broke"):
        feeding.wait(timeout=10)
    job.end()
    late = job.feed_from([1, 2])
    with pytest.raises(ls.JobClosedError, match="has ended"):
        late.wait(timeout=10)
    assert late.count == 0


def test_bad_arguments_are_named(env):
    job = _echo(str, "words").start()
    with pytest.raises(ls.LivestackError, match=r"input 'default' takes an iterable of values, not str"):
        job.feed_from("abc")
    with pytest.raises(ls.LivestackError, match="not int"):
        job.feed_from(5)  # type: ignore[arg-type]
    with pytest.raises(ls.LivestackError, match="chunk must be a positive int"):
        job.feed_from(["a"], chunk=0)
    feeding = job.feed_from(w for w in ["a"])  # a generator has no length: no total, no ETA
    feeding.wait(timeout=10)
    assert (feeding.total, feeding.eta) == (None, None)
    job.cancel()


def test_wait_times_out_while_the_feed_goes_on(env):
    job = _echo(int, "waiting").start()
    release = threading.Event()
    feeding = job.feed_from(x for x in [1] if release.wait(10))
    with pytest.raises(ls.WaitTimeout, match=r"still going after 0\.05s"):
        feeding.wait(timeout=0.05)
    release.set()
    feeding.wait(timeout=10)
    job.cancel()


def test_a_flow_runs_input_feeds_from_an_iterable(env):
    double = ls.JobSpec("double", input=int, output=int)
    double.define_worker(lambda x: 2 * x)
    first = _echo(int, "first")
    flow = ls.Liveflow("doubling")
    flow.connect(first, double)
    flow.expose(first.input(), "numbers")
    flow.expose(double.output(), "doubled")
    run = flow.start()
    feeding = run.input("numbers").feed_from(range(5000), end=True)
    run.wait(timeout=60)
    assert feeding.state == "done"
    assert run.output("doubled").values() == [2 * i for i in range(5000)]


def _map(x: int) -> int:
    return x + 1


def _flat(x: int) -> Iterator[int]:
    yield x + 1


def _proc(job: ls.LiveJob) -> None:
    for x in job.input:
        job.output.emit(x + 1)


async def _aproc(job: ls.LiveJob) -> None:
    async for x in job.input:
        await job.output.emit(x + 1)


@pytest.mark.parametrize("fn", [_map, _flat, _proc, _aproc], ids=["map", "flat-map", "processor", "async"])
def test_every_spec_form_is_fed_from_an_iterable(env, fn):
    spec = ls.JobSpec(f"form_{fn.__name__}", input=int, output=int)
    spec.define_worker(fn)
    job = spec.start()
    job.feed_from(range(3000), end=True)
    assert job.result(timeout=60) == list(range(1, 3001))


def test_the_job_panel_shows_each_feed_and_cancels_it_when_the_front_end_asks(env, comms):
    job = _echo(int, "paneled").start()
    panel = ls.widgets.JobPanel(job)
    panel.comm.hello()
    feeding = job.feed_from(itertools.count())
    sent = panel.comm.custom
    wait_until(lambda: any(m.get("feeds") and m["feeds"][0]["count"] > 0 for m in sent()), timeout=10)
    shown = [m["feeds"][0] for m in sent() if m.get("feeds")][-1]
    assert (shown["tag"], shown["state"], shown["total"]) == ("default", "feeding", None)
    assert shown["id"] == feeding.id
    # the Cancel button's message
    panel.comm.handle_msg(
        {"content": {"data": {"method": "custom", "content": {"type": "cancel_feed", "id": feeding.id}}},
         "buffers": []}
    )  # fmt: skip
    feeding.wait(timeout=10)
    assert feeding.state == "cancelled"
    wait_until(lambda: panel.comm.custom()[-1].get("feeds", [{}])[0].get("state") == "cancelled", timeout=10)
    assert f"cancelled default: {feeding.count:,}" in panel.snapshot_html()
    job.cancel()
