"""The Redis vault against a real redis-server: what it records, what a second
process reads back, how it refuses bad URLs, and that a datapoint is stored once."""

# ruff: noqa: F811 - the fixtures imported from redis_support are test parameters

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import redis as redis_py
from pizzeria import Order, bake
from redis_support import ROOT, free_port, redis_exe, redis_server, redis_url  # noqa: F401

import livestack_nb as ls
from livestack_nb.testing import collect, wait_until
from livestack_nb.vault.base import DatapointRecord
from livestack_nb.vault.redis import RedisVault


def raw(url: str) -> redis_py.Redis:
    return redis_py.Redis.from_url(url.split("?")[0])


def prefix_of(url: str) -> str:
    return url.split("prefix=")[1]


def test_jobs_statuses_and_outputs_are_read_back_by_a_new_env(make_env, redis_url):
    first = make_env(vault=redis_url)
    job = bake.start(options={"spice": 1})
    job.feed_many([{"pizza": "margherita"}, {"pizza": "funghi", "size": 10}])
    job.end()
    job.wait(timeout=10)
    first.close()

    again = make_env(vault=redis_url)
    (info,) = again.jobs()
    assert (info.job_id, info.spec, info.status) == (job.job_id, "bake", "completed")
    assert info.options == {"spice": 1}
    handle = again.job(job.job_id)
    assert [s for s, _ in handle.statuses] == ["requested", "running", "completed"]
    assert handle.output().values() == ["12in margherita, spice 1", "10in funghi, spice 1"]
    again.register(bake)
    assert again.job(job.job_id).input().stream.values() == [
        Order(pizza="margherita"),
        Order(pizza="funghi", size=10),
    ]


def test_a_second_process_lists_the_jobs_and_replays_their_outputs(make_env, redis_url):
    env = make_env(vault=redis_url)

    @ls.job_spec
    def triple(x: int) -> int:
        return 3 * x

    job = triple.start()
    job.feed_many(range(1000))
    job.end()
    job.wait(timeout=10)
    code = """
        import json, sys
        import livestack_nb as ls
        from livestack_nb.testing import collect, wait_until
        env = ls.LiveEnv(vault=sys.argv[1], history=10)
        jobs = [(j.job_id, j.spec, j.status) for j in env.jobs()]
        out = env.job(jobs[0][0]).output()
        print(json.dumps({"jobs": jobs, "len": len(out), "replay": collect(out.replay())}))
        env.close()
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), redis_url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["jobs"] == [[job.job_id, "triple", "completed"]]
    assert seen["len"] == 1000
    assert seen["replay"] == [3 * i for i in range(1000)]
    env.close()


def test_replay_beyond_the_memory_bound_has_no_gaps_or_duplicates(make_env, redis_url):
    make_env(vault=redis_url, history=10)

    @ls.job_spec
    def plus_one(x: int) -> int:
        return x + 1

    job = plus_one.start()
    for i in range(0, 3000, 7):
        job.feed_many(list(range(i, min(i + 7, 3000))))
    job.end()
    job.wait(timeout=20)
    out = job.output()
    assert len(out) == 3000 and out.values() == list(range(1, 3001))  # whole, from Redis
    assert out.values(last=10) == list(range(2991, 3001))
    assert collect(out.replay()) == list(range(1, 3001))
    points = out.datapoints(last=10)
    assert points[-1].parents == (f"{job.input().stream.stream_id}:2999",)


def test_streams_are_bounded_by_maxlen_and_still_count_every_datapoint(make_env, redis_url):
    env = make_env(vault=redis_url + "&maxlen=5")
    assert isinstance(env.vault, RedisVault) and env.vault.maxlen == 5
    sid = "s/out/default"
    for i in range(0, 1000, 2):
        env.vault.add_datapoints([DatapointRecord(sid, i, 1.0, i), DatapointRecord(sid, i + 1, 1.0, i + 1)])
        env.flush()  # one entry each, so there is something to trim
    assert env.vault.count(sid) == 1000
    # "~": Redis trims whole internal nodes (100 entries by default), never below maxlen
    stored = raw(redis_url).xlen(f"{prefix_of(redis_url)}:stream:{sid}")
    assert 5 <= stored <= 105
    kept = env.vault.datapoints(sid)
    assert [p.seq for p in kept] == list(range(1000 - 2 * stored, 1000))
    assert [p.value for p in kept] == [p.seq for p in kept]


def test_a_datapoint_written_again_is_stored_once(make_env, redis_url):
    """A retried or taken-over job emits its outputs again from seq 0: what is
    stored already is dropped, the rest appended, in order."""
    env = make_env(vault=redis_url)
    vault = env.vault
    sid = "job-1/out/default"
    vault.add_datapoints([DatapointRecord(sid, i, 1.0, f"v{i}") for i in range(5)])
    env.flush()
    vault.add_datapoints([DatapointRecord(sid, i, 2.0, f"v{i}") for i in range(8)])  # overlaps 0..4
    env.flush()
    vault.add_datapoints([DatapointRecord(sid, i, 3.0, f"v{i}") for i in range(3)])  # all stored already
    env.flush()
    points = vault.datapoints(sid)
    assert [(p.seq, p.value) for p in points] == [(i, f"v{i}") for i in range(8)]
    assert [p.time for p in points] == [1.0] * 5 + [2.0] * 3
    assert vault.count(sid) == 8


def test_values_are_stored_as_json_and_validated_by_the_tag_type_on_read(make_env, redis_url):
    env = make_env(vault=redis_url)

    @ls.job_spec
    def order_up(o: Order) -> Order:
        return Order(pizza=o.pizza.upper(), size=o.size)

    job = order_up.start()
    job.feed({"pizza": "calzone", "size": 9})
    job.end()
    job.wait(timeout=10)
    key = f"{prefix_of(redis_url)}:stream:{job.output().stream_id}"
    ((_, fields),) = raw(redis_url).xrange(key, "-", "(1-0")
    stored = fields[b"v"]  # plain JSON (after a one-byte marker: written from the model's Python form)
    assert stored[:1] == b"~" and json.loads(stored[1:]) == [{"pizza": "CALZONE", "size": 9}]
    (batch,) = env.vault.batches(job.output().stream_id, 0, None, Order)
    assert batch.values == [Order(pizza="CALZONE", size=9)]
    # A stored value that no longer fits its type is read as plain JSON, with a warning.
    (loose,) = env.vault.batches(job.output().stream_id, 0, None, int)
    assert loose.values == [{"pizza": "CALZONE", "size": 9}]


def test_bad_urls_give_a_clear_error_naming_the_url(redis_server):
    port = redis_server.rsplit(":", 1)[1].split("/")[0]
    with pytest.raises(ls.LivestackError, match=r"redis://127\.0\.0\.1:1/0.*cannot be reached"):
        RedisVault("redis://127.0.0.1:1/0", connect_timeout=2)
    with pytest.raises(ls.LivestackError, match=r"redis://127\.0\.0\.1:notaport.*not a valid"):
        ls.LiveEnv(vault="redis://127.0.0.1:notaport/0")
    with pytest.raises(ls.LivestackError, match="maxlen") as info:
        ls.LiveEnv(vault=f"redis://127.0.0.1:{port}/0?maxlen=lots")
    with pytest.raises(ls.LivestackError, match=rf"rediss://127\.0\.0\.1:{port}/0.*cannot be reached"):
        RedisVault(f"rediss://127.0.0.1:{port}/0", connect_timeout=2)  # TLS against a plain server
    with pytest.raises(ls.LivestackError, match="refused the credentials") as info:
        ls.LiveEnv(vault=f"redis://nobody:hunter2@127.0.0.1:{port}/0")
    assert "nobody:***@127.0.0.1" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_user_and_password_in_the_url_work(make_env, redis_server):
    client = raw(redis_server)
    client.execute_command("ACL", "SETUSER", "cook", "on", ">s3cret", "~*", "&*", "+@all")
    try:
        base = redis_server.replace("redis://", "redis://cook:s3cret@")
        env = make_env(vault=f"{base}?prefix=auth-test")
        assert "s3cret" not in repr(env.vault)
        job = bake.start()
        job.feed({"pizza": "bianca"})
        job.end()
        job.wait(timeout=10)
        assert [j.status for j in env.jobs()] == ["completed"]
    finally:
        client.execute_command("ACL", "DELUSER", "cook")
        client.close()


def test_rediss_urls_connect_over_tls(make_env, tmp_path):
    """A TLS-only redis-server (a self-signed certificate made here), reached with ``rediss://``."""
    exe = redis_exe()
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("openssl is not installed (apt-get install openssl)")
        pytest.skip("openssl is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    make_cert = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert]
    make_cert += ["-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        make_cert,
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = free_port()
    tls = [
        "--tls-port",
        str(port),
        "--tls-cert-file",
        cert,
        "--tls-key-file",
        key,
        "--tls-ca-cert-file",
        cert,
    ]
    args = [
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--tls-auth-clients",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    server = subprocess.Popen([exe, *args, *tls, "--dir", tmp_path], stdout=subprocess.DEVNULL)
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}&prefix=tls"
    try:

        def answers() -> bool:
            try:
                RedisVault(url, connect_timeout=1).close()
                return True
            except ls.LivestackError:
                return server.poll() is not None

        wait_until(answers, timeout=20)
        assert server.poll() is None
        env = make_env(vault=url)
        job = bake.start()
        job.feed({"pizza": "marinara"})
        job.end()
        job.wait(timeout=10)
        assert env.job(job.job_id).output().values() == ["12in marinara, spice 0"]
        assert [j.status for j in env.jobs()] == ["completed"]
        env.close()
        with pytest.raises(ls.LivestackError, match="cannot be reached"):  # plain redis:// to a TLS port
            RedisVault(f"redis://127.0.0.1:{port}/0", connect_timeout=1)
    finally:
        server.terminate()
        server.wait(10)
