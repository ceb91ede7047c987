"""The vault contract, checked the same way on the memory vault and the SQLite vault."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from livestack_nb import StorageRef
from livestack_nb.vault import (
    DatapointRecord,
    JobRecord,
    MemoryVault,
    StatusRecord,
    StreamRecord,
    ValidationFailureRecord,
    Vault,
)
from livestack_nb.vault.sqlite import SQLiteVault


@pytest.fixture(params=["memory", "sqlite"])
def vault(request, tmp_path) -> Iterator[Vault]:
    v: Vault = MemoryVault() if request.param == "memory" else SQLiteVault(tmp_path / "contract.db")
    try:
        yield v
    finally:
        v.close()


def test_jobs_statuses_and_children(vault):
    vault.add_job(JobRecord("a", "bake", "requested", options={"spice": 1}, created=1.0))
    vault.add_job(JobRecord("b", "box", "requested", parent_id="a", created=2.0))
    vault.add_child("a", "b")
    vault.add_status(StatusRecord("a", "running", 3.0))
    vault.add_status(StatusRecord("a", "failed", 4.0, "Traceback ...\nValueError: boom"))
    assert [(j.job_id, j.status) for j in vault.jobs()] == [("a", "failed"), ("b", "requested")]
    job = vault.job("a")
    assert job is not None and job.options == {"spice": 1} and job.spec == "bake"
    assert vault.job("nope") is None
    assert [s.status for s in vault.statuses("a")] == ["requested", "running", "failed"]
    assert vault.statuses("a")[-1].detail == "Traceback ...\nValueError: boom"
    assert vault.children("a") == ["b"]
    assert vault.job("b").parent_id == "a"


def test_streams_of_a_job(vault):
    vault.add_job(JobRecord("a", "bake", "requested"))
    vault.add_stream(StreamRecord("a/in/default", "a", "in", "default"))
    vault.add_stream(StreamRecord("a/out/default", "a", "out", "default"))
    got = sorted((s.direction, s.tag, s.stream_id) for s in vault.streams("a"))
    assert got == [("in", "default", "a/in/default"), ("out", "default", "a/out/default")]


def test_datapoints_in_order_with_lineage_and_references(vault):
    ref = StorageRef("ab" * 32, 10, "str")
    vault.add_datapoints(
        [
            DatapointRecord("s", 0, 1.0, {"x": 1}),
            DatapointRecord("s", 1, 1.0, "two", ("p:4",)),
            DatapointRecord("s", 2, 2.0, ref, ("p:5",)),
        ]
    )
    points = vault.datapoints("s")
    assert [(p.seq, p.time, p.value, p.parents) for p in points] == [
        (0, 1.0, {"x": 1}, ()),
        (1, 1.0, "two", ("p:4",)),
        (2, 2.0, ref, ("p:5",)),
    ]
    assert [p.seq for p in vault.datapoints("s", after=0, limit=1)] == [1]
    assert vault.datapoints("other") == []


def test_count_and_batches(vault):
    vault.add_datapoints([DatapointRecord("s", i, 1.0, i) for i in range(5)])
    assert vault.count("s") == 5
    assert vault.count("other") == 0
    values = [v for b in vault.batches("s", 2, 4) for v in b.values[max(0, 2 - b.seq0) : 4 - b.seq0]]
    assert values == [2, 3]


def test_validation_failures(vault):
    vault.add_validation_failure(ValidationFailureRecord("a", "bake", "default", "pizza", "bad", 1.0))
    vault.add_validation_failure(ValidationFailureRecord("b", "bake", "default", None, "worse", 2.0))
    assert [f.message for f in vault.validation_failures()] == ["bad", "worse"]
    assert [f.field for f in vault.validation_failures("a")] == ["pizza"]


def test_memory_vault_records_no_stream_but_sqlite_does(tmp_path):
    assert MemoryVault().recorder("s", "default", int) is None
    v = SQLiteVault(tmp_path / "k.db")
    try:
        assert v.durable and v.recorder("s", "default", int) is not None
    finally:
        v.close()


def _vault_imports() -> dict[str, set[str]]:
    """The vault modules each vault module imports (lazy ones included), read with ast."""
    import ast
    from pathlib import Path

    import livestack_nb.vault as pkg

    root = Path(pkg.__file__).parent
    out: dict[str, set[str]] = {}
    for path in root.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module)
                else:
                    found.update(a.name for a in node.names)
        out[path.stem] = found
    return out


def test_backends_depend_on_the_contract_and_only_the_opener_on_backends():
    """The contract (base, queue) imports no backend; a backend no other backend; only
    vault/open.py (and the package's own __init__, for the memory default) name them."""
    imports = _vault_imports()
    backends = {"memory", "sqlite", "redis", "memory_queue"}
    assert imports["base"] & backends == set()
    assert imports["queue"] & backends == set()
    assert imports["open"] >= {"memory", "sqlite", "redis"}
    for name, found in imports.items():
        if name in ("open", "__init__", "memory_queue"):
            continue
        assert found & backends == set(), f"vault/{name}.py imports {found & backends}"
    assert imports["memory_queue"] & backends == {"memory"}  # it keeps its records in one
