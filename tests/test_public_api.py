"""The curated public API: exactly these names, and a light import."""

from __future__ import annotations

import re
import subprocess
import sys
import types

import livestack_nb as ls

EXPECTED = [
    "job_spec", "JobSpec", "LiveJob", "JobHandle", "JobStatus",
    "LiveWorkerDef", "LiveWorker", "DataStream", "Datapoint",
    "Liveflow", "conn", "expose", "ParallelAttempts", "attempt", "Attempt", "Hop",
    "LiveEnv", "use_env", "current_env",
    "StorageProvider", "MemoryStorage", "LocalDirStorage", "StorageRef",
    "LivestackError", "DataValidationError", "WiringError", "JobFailed", "WaitTimeout", "JobClosedError",
    "JobCancelled", "StreamEnded", "TruncatedHistoryWarning", "DeadLetter",
    "window", "agg", "key_by", "Keyed",
    "__version__",
]  # fmt: skip


def test_all_is_exactly_the_curated_list():
    assert len(ls.__all__) == len(set(ls.__all__))
    assert sorted(ls.__all__) == sorted(EXPECTED)


def test_every_public_name_resolves():
    for name in EXPECTED:
        assert getattr(ls, name) is not None, name


def test_version_is_a_version_string():
    assert isinstance(ls.__version__, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", ls.__version__)


def test_import_is_light_and_needs_no_notebook_stack():
    code = (
        "import sys, livestack_nb\n"
        "heavy = [m for m in ('ipywidgets', 'IPython', 'pandas', 'redis') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""


def test_public_names_are_exactly_all():
    """As httpx checks its own: every public name of the package is in ``__all__``
    (no stray import such as ``sys`` or ``VERSION`` leaks into ``ls.<tab>``); the
    package's submodules are attributes because they are imported, not names it offers."""
    public = {
        name
        for name in dir(ls)
        if not name.startswith("_")
        and not (
            isinstance(obj := getattr(ls, name), types.ModuleType)
            and obj.__name__ == f"livestack_nb.{name}"
            and name not in ls.__all__
        )
    }
    assert public == set(ls.__all__) - {"__version__"}
    for name in ("sys", "VERSION", "annotations"):
        assert not hasattr(ls, name), name
