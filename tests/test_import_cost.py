"""What ``import livestack_nb`` loads: the core and what it stands on, nothing
heavy (widgets, IPython, pandas, Redis, SQLite load when first used).

These tests look at module sets, never at timings (``bench/import_time.py``
measures the time).
"""

from __future__ import annotations

import json
import subprocess
import sys

# Third-party top-level packages the core needs at import (pydantic's own
# dependencies vary a little between its versions).
ALLOWED = {
    "livestack_nb",
    "reactivex",
    "pydantic",
    "pydantic_core",
    "typing_extensions",
    "annotated_types",
    "typing_inspection",
}

NOT_AT_IMPORT = [
    "pandas",
    "numpy",
    "ipywidgets",
    "IPython",
    "ipykernel",
    "traitlets",
    "comm",
    "redis",
    "sqlite3",
    "_sqlite3",
    "livestack_nb.widgets",
    "livestack_nb.vault.sqlite",
    "livestack_nb.vault.redis",
    "livestack_nb.remote",
    "livestack_nb.queue_worker",
    "livestack_nb.vault.memory_queue",
    "livestack_nb.cli",
]


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _third_party(modules: set[str]) -> set[str]:
    tops = {m.split(".")[0] for m in modules}
    return {m for m in tops if m not in sys.stdlib_module_names and not m.startswith("_sysconfigdata")}


def test_import_loads_only_the_core_and_what_it_stands_on():
    loaded = _modules_after("import livestack_nb") - _modules_after("pass")
    assert {"livestack_nb", "reactivex", "pydantic"} <= loaded
    assert _third_party(loaded) <= ALLOWED, sorted(_third_party(loaded) - ALLOWED)
    assert [m for m in NOT_AT_IMPORT if m in loaded] == []


def test_what_import_leaves_out_loads_when_first_used(tmp_path):
    db = tmp_path / "v.db"
    code = (
        "import livestack_nb as ls\n"
        f"env = ls.LiveEnv(vault='sqlite:///{db.as_posix()}')\n"
        "stream = ls.DataStream('s')\n"
        "stream.push([1, 2])\n"
        "stream.to_pandas()\n"
        "env.close()\n"
    )
    loaded = _modules_after(code)
    assert {"sqlite3", "pandas", "livestack_nb.vault.sqlite"} <= loaded
    assert [m for m in ("ipywidgets", "IPython", "redis", "livestack_nb.widgets") if m in loaded] == []


def test_widgets_is_a_lazy_attribute_of_the_package():
    # reached as ``ls.widgets`` (no import of the subpackage written), and only then loaded
    loaded = _modules_after(
        "import livestack_nb as ls\n"
        "assert 'livestack_nb.widgets' not in sys.modules\n"
        "assert 'widgets' in dir(ls)\n"
        "assert ls.widgets.StreamTable.__name__ == 'StreamTable'\n"
    )
    assert {"livestack_nb.widgets", "ipywidgets"} <= loaded


def test_an_unknown_attribute_is_still_an_attribute_error():
    import pytest

    import livestack_nb as ls

    with pytest.raises(AttributeError, match="no attribute 'widget'"):
        ls.widget  # noqa: B018
