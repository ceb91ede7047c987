"""Storage keys cannot leave their directory, and no data from outside the process is unpickled."""

from __future__ import annotations

import ast
import contextlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import livestack_nb as ls
from livestack_nb.storage import StorageRef

PACKAGE = Path(ls.__file__).resolve().parent

ESCAPES = [
    "../../etc/passwd",
    "/etc/passwd",
    "..",
    "a" * 64 + "\n",  # a regex with $ lets this through
    "a" * 64 + "/../../x",
    "A" * 64,
    "a" * 63,
    "",
    "aa/" + "a" * 61,
    "\x00" + "a" * 63,
]


@pytest.mark.parametrize("key", ESCAPES)
def test_a_storage_key_that_is_not_a_digest_is_refused_before_any_file_is_touched(tmp_path, key):
    root = tmp_path / "store"
    storage = ls.LocalDirStorage(root)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ls.LivestackError):
        storage.get(key)
    with pytest.raises(ls.LivestackError):
        storage.has(key)
    with pytest.raises(ls.LivestackError):
        storage.get(StorageRef(key, 1, "bytes"))
    assert sorted(tmp_path.rglob("*")) == before


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(key=st.text(max_size=80))
def test_any_text_as_a_key_stays_inside_the_directory(tmp_path_factory, key):
    root = tmp_path_factory.mktemp("store")
    storage = ls.LocalDirStorage(root)
    try:
        storage.has(key)
    except ls.LivestackError:
        return
    # only a digest gets this far, and its file is inside the directory
    path = storage._file(key).resolve()
    assert path.is_relative_to(root.resolve())
    assert len(key) == 64 and set(key) <= set("0123456789abcdef")


def test_a_stored_value_reads_back_under_its_digest_only(tmp_path):
    storage = ls.LocalDirStorage(tmp_path)
    ref = storage.put(b"<script>")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [ref.key]
    assert storage.get(ref) == b"<script>"


UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}


def test_no_module_of_the_package_can_unpickle_or_eval():
    """Nothing read from a vault, storage or the wire is ever unpickled or evaluated."""
    found = []
    # The one eval: a processor's own string annotations, in its own module's
    # namespace (what typing.get_type_hints does); no data is evaluated.
    spec_tree = ast.parse((PACKAGE / "_describe.py").read_text())
    allowed = {
        ("_describe.py", n.lineno)
        for f in ast.walk(spec_tree)
        if isinstance(f, ast.FunctionDef) and f.name == "_resolve_one"
        for n in ast.walk(f)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "eval"
    }
    assert len(allowed) == 1
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in {"eval", "exec", "__import__"} and (path.name, node.lineno) not in allowed:
                    found.append(f"{path.name}:{node.lineno} {node.func.id}()")
            elif isinstance(node, ast.Attribute) and node.attr in {"loads", "load"}:
                base = node.value
                if isinstance(base, ast.Name) and base.id in UNSAFE_MODULES | {"yaml"}:
                    found.append(f"{path.name}:{node.lineno} {base.id}.{node.attr}")
            found += [f"{path.name}:{node.lineno} import {n}" for n in names if n in UNSAFE_MODULES]
    assert not found, found


def test_a_sqlite_vault_row_holding_a_pickle_is_not_unpickled(make_env, tmp_path):
    """Data in the vault file is JSON read by the tag's type: a pickle planted there is just bytes."""
    import pickle
    import sqlite3

    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    db = tmp_path / "v.db"
    env = make_env(vault=f"sqlite:///{db}")

    @ls.job_spec
    def echo(x: str) -> str:
        return x

    job = echo.start(env=env)
    job.feed("ok")
    job.end()
    job.wait(timeout=10)
    env.close()
    con = sqlite3.connect(db)
    con.execute("UPDATE datapoints SET payload = ?", (pickle.dumps([Boom()]),))
    con.commit()
    con.close()
    again = make_env(vault=f"sqlite:///{db}")
    with contextlib.suppress(Exception):  # refusing the row is fine; running it is not
        ls.testing.collect(again.job(job.job_id).output().replay())
    assert not (tmp_path / "pwned").exists()
