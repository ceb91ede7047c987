"""Storage providers: content-addressed large values, transparent in streams."""

from __future__ import annotations

import hashlib

import pytest

import livestack_nb as ls

BIG = bytes(range(256)) * 4096  # 1 MiB, deterministic
BIG_KEY = hashlib.sha256(BIG).hexdigest()


@ls.job_spec
def blob(n: int) -> bytes:
    return BIG


def _files(path) -> list:
    return [p for p in path.rglob("*") if p.is_file()]


@pytest.mark.parametrize("provider", [ls.MemoryStorage, ls.LocalDirStorage])
def test_put_get_roundtrip_is_content_addressed(provider, tmp_path):
    storage = provider(tmp_path) if provider is ls.LocalDirStorage else provider()
    ref = storage.put(BIG)
    assert isinstance(ref, ls.StorageRef)
    assert ref.key == BIG_KEY
    assert ref.size == len(BIG)
    assert storage.has(BIG_KEY)
    assert storage.get(ref) == BIG
    assert storage.put(BIG) == ref
    text_ref = storage.put("héllo")
    assert storage.load(text_ref) == "héllo"


def test_missing_or_malformed_keys_are_errors(tmp_path):
    storage = ls.LocalDirStorage(tmp_path)
    with pytest.raises(ls.LivestackError):
        storage.get("0" * 64)
    with pytest.raises(ls.LivestackError):
        storage.get("../../etc/passwd")


def test_large_values_go_to_the_storage_and_come_back(make_env, tmp_path):
    make_env(storage=ls.LocalDirStorage(tmp_path))
    job = blob.start()
    job.feed_many([1, 2])
    job.end()
    job.wait(timeout=10)
    assert job.output().values() == [BIG, BIG]
    stored = _files(tmp_path)
    assert [p.name for p in stored] == [BIG_KEY]  # stored once, under its sha256


def test_storage_url_form(make_env, tmp_path):
    make_env(storage=f"dir://{tmp_path}")
    assert blob.run([1], timeout=10) == [BIG]
    assert [p.name for p in _files(tmp_path)] == [BIG_KEY]


def test_small_values_stay_inline(make_env, tmp_path):
    @ls.job_spec
    def small(n: int) -> str:
        return "tiny"

    make_env(storage=ls.LocalDirStorage(tmp_path))
    assert small.run([1], timeout=10) == ["tiny"]
    assert _files(tmp_path) == []


def test_job_storage_is_the_env_provider(make_env):
    storage = ls.MemoryStorage()
    make_env(storage=storage)
    refs: list[ls.StorageRef] = []

    @ls.job_spec(inputs={"default": str}, outputs={"default": int})
    def keep(job: ls.LiveJob):
        assert job.storage is storage
        for text in job.input:
            refs.append(job.storage.put(text))
            job.output.emit(len(text))

    assert keep.run(["abc"], timeout=10) == [3]
    assert storage.load(refs[0]) == "abc"


def test_downstream_jobs_get_large_values_back(make_env, tmp_path):
    @ls.job_spec
    def measure(data: bytes) -> int:
        return len(data)

    make_env(storage=ls.LocalDirStorage(tmp_path))
    flow = ls.Liveflow("blobs")
    flow.connect(blob, measure)
    assert flow.run([1], timeout=10) == [len(BIG)]


def test_a_write_that_fails_midway_leaves_no_value_and_no_temporary_file(tmp_path, monkeypatch):
    storage = ls.LocalDirStorage(tmp_path)

    def no_disk(fd: int) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr("livestack_nb.storage.os.fsync", no_disk)
    with pytest.raises(OSError, match="no space"):
        storage.put(BIG)
    assert not storage.has(BIG_KEY)
    assert _files(tmp_path) == []  # neither the value nor its temporary file
    monkeypatch.undo()
    assert storage.get(storage.put(BIG)) == BIG
    assert [p.name for p in _files(tmp_path)] == [BIG_KEY]  # named by digest only
