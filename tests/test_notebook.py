"""A real kernel: a cell starts a job and returns at once, later cells feed it and await it."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

import livestack_nb

CELLS = [
    """\
import time
import livestack_nb as ls

@ls.job_spec
def double(n: int) -> int:
    time.sleep(0.01)  # simulated work
    return 2 * n
""",
    """\
t0 = time.perf_counter()
job = double.start()
print(f"{time.perf_counter() - t0:.3f}", job.status.value)
""",
    """\
job.feed_many([1, 2, 3])
job.end()
""",
    """\
await job
print(job.result(), job.status.value)
""",
    """\
other = double.start()
other.feed(5)
other.end()
other.wait(timeout=10)
print(other.result(), other.status.value)
""",
]


def _stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_cells_start_feed_and_await_a_job(tmp_path):
    nb = new_notebook(cells=[new_code_cell(src) for src in CELLS])
    package_root = str(Path(livestack_nb.__file__).resolve().parent.parent)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    )
    client = NotebookClient(
        nb, kernel_name="python3", timeout=60, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env)

    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    elapsed, status = _stdout(nb.cells[1]).split()
    assert float(elapsed) < 1.0
    assert status in ("requested", "running")
    assert _stdout(nb.cells[3]).strip() == "[2, 4, 6] completed"
    assert _stdout(nb.cells[4]).strip() == "[10] completed"
