"""Guarantees of the README that no other test file holds, and a check that every test
the README's Guarantees section names exists."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from kernel import kernel_env

import livestack_nb as ls
from livestack_nb.stream import DEFAULT_HISTORY

TESTS = Path(__file__).resolve().parent
README = TESTS.parent / "README.md"


def test_every_test_the_guarantees_name_exists():
    section = README.read_text().split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`((?:\w+/)?test_\w+\.py)::(test_\w+)`", section)
    assert len(named) >= 30
    missing = []
    for file, name in named:
        tree = ast.parse((TESTS / file).read_text())
        if not any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body):
            missing.append(f"{file}::{name}")
    assert not missing, missing


def test_a_stream_keeps_10000_datapoints_by_default(env):
    assert DEFAULT_HISTORY == 10_000

    @ls.job_spec
    def same(n: int) -> int:
        return n

    job = same.start()
    job.feed_many(range(12_000))
    job.end()
    job.wait(timeout=20)
    assert len(job.output()) == 12_000
    assert job.output().values(last=10_000) == list(range(2_000, 12_000))


def test_a_memory_vault_keeps_nothing_for_a_new_env():
    code = (
        "import livestack_nb as ls\n"
        "@ls.job_spec\n"
        "def same(n: int) -> int:\n"
        "    return n\n"
        "print(same.run([1, 2], timeout=20))\n"
        "import os; os._exit(0)\n"  # a crash: nothing closes
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=kernel_env(), capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "[1, 2]", out.stderr
    fresh = ls.LiveEnv()
    try:
        assert fresh.jobs() == []
    finally:
        fresh.close()
