"""Execute the example notebooks the way CI and ``make examples`` do.

One place for how a notebook is run (a fresh kernel, nbclient, widget state
kept), so the saved notebooks and the tests see the same thing. Run as a
script to re-execute every notebook in ``examples/`` and save it with its
outputs: ``python tests/examples_support.py [names...]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


def examples() -> list[Path]:
    """The teaching notebooks, in order."""
    return sorted(EXAMPLES_DIR.glob("[0-9][0-9]_*.ipynb"))


def execute(
    nb: nbformat.NotebookNode, cwd: Path, timeout: int = 60, env: dict[str, str] | None = None
) -> float:
    """Run ``nb`` top to bottom in a fresh kernel, in place; return the seconds it took.

    ``env`` replaces the kernel's environment variables (default: this process's).
    """
    t0 = time.perf_counter()
    kwargs = {} if env is None else {"env": env}
    NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(cwd)}},
    ).execute(**kwargs)
    return time.perf_counter() - t0


def main(names: list[str]) -> None:
    paths = [p for p in examples() if not names or any(n in p.stem for n in names)]
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        took = execute(nb, path.parent)
        for cell in nb.cells:
            cell.get("metadata", {}).pop("execution", None)
        nbformat.write(nb, path)
        print(f"{path.name}: {took:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
