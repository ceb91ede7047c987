"""Named standalone streams (Livestack's ``DataStream.getOrCreate({uniqueName})``):
``env.stream(name, type=...)`` gets or creates one that any cell, spec or process on the
same vault publishes to and reads, from the beginning or live."""

# ruff: noqa: F811 - the fixtures imported from redis_support are test parameters
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import BaseModel
from redis_support import ROOT, TESTS, redis_server, redis_url  # noqa: F401
from support import Recorder

import livestack_nb as ls
from livestack_nb.testing import wait_until


class Message(BaseModel):
    text: str


def _run(code: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(TESTS) + os.pathsep + str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=TESTS,
        env=env,
    )


def test_a_named_stream_is_got_or_created_and_typed(env):
    s = env.stream("chat", type=Message)
    assert env.stream("chat") is s and env.stream("chat", type=Message) is s
    with pytest.raises(ls.LivestackError, match=r"stream 'chat' carries Message, not str"):
        env.stream("chat", type=str)
    with pytest.raises(ls.LivestackError, match="non-empty string"):
        env.stream("")
    with pytest.raises(ls.DataValidationError, match=r"stream 'chat'.*expects Message.*field 'text'"):
        s.emit({"txt": "hi"})
    s.emit({"text": "hello"})  # validated into the type
    assert s.values() == [Message(text="hello")]
    assert repr(s) == "<NamedStream 'chat' Message live, 1 values>"


def test_specs_and_cells_publish_to_and_read_a_named_stream_from_the_start_or_live(env):
    @ls.job_spec(inputs={"default": str}, outputs={"default": int})
    def talker(job: ls.LiveJob) -> None:
        chat = job.env.stream("chat", type=Message)
        for line in job.input:
            chat.emit(Message(text=line))
        job.output.emit(len(chat))

    chat = env.stream("chat", type=Message)
    chat.emit(Message(text="first"))  # before any reader
    live = Recorder(chat)  # from now on
    assert talker.run(["a", "b"], timeout=10) == [3]
    chat.emit_many([{"text": "c"}])
    chat.end()
    assert [m.text for m in chat] == ["first", "a", "b", "c"]  # from the beginning
    assert [m.text for m in live.wait_done().values] == ["a", "b", "c"]
    with pytest.raises(ls.JobClosedError):
        chat.emit({"text": "late"})


PUBLISH_SQLITE = """\
import sys
import livestack_nb as ls
env = ls.LiveEnv(vault="sqlite:///" + sys.argv[1])
s = env.stream("orders", type=dict)
s.emit_many([{"n": int(x)} for x in sys.argv[2].split(",")])
env.close()
print(len(s))
"""


def test_with_sqlite_other_processes_read_a_named_stream_and_publish_one_at_a_time(make_env, tmp_path):
    db = tmp_path / "k.db"
    p = _run(PUBLISH_SQLITE, str(db), "1,2,3")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and out.strip() == "3", err
    first = make_env(vault=f"sqlite:///{db}", history=2)
    orders = first.stream("orders", type=dict)
    assert len(orders) == 3
    assert orders.values() == [{"n": 1}, {"n": 2}, {"n": 3}]  # whole, though memory holds 2
    orders.emit({"n": 4})  # this process publishes now
    first.flush()  # what another process reads is what was written
    reader = make_env(vault=f"sqlite:///{db}")
    late = reader.stream("orders", type=dict)  # opened at 4 values
    assert late.values() == [{"n": n} for n in range(1, 5)]
    p = _run(PUBLISH_SQLITE, str(db), "5")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "another process publishes to it" in err, err
    first.close()  # the publisher is done: another may publish
    p = _run(PUBLISH_SQLITE, str(db), "5")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and out.strip() == "5", err
    late.emit({"n": 6})  # takes in 5 first, then goes on: nothing collides, nothing is lost
    assert late.values() == [{"n": n} for n in range(1, 7)]
    reader.close()
    assert make_env(vault=f"sqlite:///{db}").stream("orders").values() == [{"n": n} for n in range(1, 7)]


PUBLISH_REDIS = """\
import sys
import livestack_nb as ls
env = ls.LiveEnv(vault=sys.argv[1], autostart=False)
s = env.stream("chat", type=dict)
for i in range(50):
    s.emit({"who": "them", "i": i})
env.flush()
print("published", flush=True)
print([(m["who"], m["i"]) for m in s], flush=True)  # until the stream ends
env.close()
"""


def test_with_redis_two_processes_publish_to_one_named_stream_and_read_the_same_sequence(make_env, redis_url):
    env = make_env(vault=redis_url, autostart=False)
    chat = env.stream("chat", type=dict)
    p = _run(PUBLISH_REDIS, redis_url)
    assert p.stdout is not None
    for i in range(50):  # at the same time as the other process
        chat.emit({"who": "us", "i": i})
    line = p.stdout.readline()
    assert line == "published\n", line + (p.stderr.read() if p.stderr else "")
    env.flush()
    wait_until(lambda: len(chat) == 100, timeout=20, message="both processes' values arrived")
    chat.end()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    here = [(m["who"], m["i"]) for m in chat]
    assert sorted(here) == sorted([("us", i) for i in range(50)] + [("them", i) for i in range(50)])
    assert [i for w, i in here if w == "us"] == list(range(50))  # each writer's order kept
    assert out.strip() == str(here)  # the other process read the same sequence
    # a new env on the server reads it all back, ended
    again = make_env(vault=redis_url, autostart=False)
    assert [(m["who"], m["i"]) for m in again.stream("chat")] == here
