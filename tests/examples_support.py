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
from typing import Any

import nbformat
from nbclient import NotebookClient

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


def examples() -> list[Path]:
    """The teaching notebooks, in order."""
    return sorted(EXAMPLES_DIR.glob("[0-9][0-9]_*.ipynb"))


class _AsEachCellEnded(NotebookClient):  # type: ignore[misc]
    """A client that keeps each output as it was when its own cell finished.

    A widget's static snapshot is shown under a display id and refreshed while
    the kernel runs; a plain client applies every later refresh to the cell that
    first showed it, so a saved table would hold what later cells fed (the
    widget's final state). Here an update reaches only the outputs of the cell
    being run: a reader of the saved notebook sees each output as the story
    told it at that point.
    """

    _running_cell: int = -1

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        self._running_cell = cell_index
        return super().process_message(msg, cell, cell_index)

    def _update_display_id(self, display_id: str, msg: dict[str, Any]) -> None:
        where = self._display_id_map.get(display_id)
        if not where:
            return super()._update_display_id(display_id, msg)
        self._display_id_map[display_id] = {i: o for i, o in where.items() if i == self._running_cell}
        try:
            super()._update_display_id(display_id, msg)
        finally:
            self._display_id_map[display_id] = where


def execute(
    nb: nbformat.NotebookNode, cwd: Path, timeout: int = 60, env: dict[str, str] | None = None
) -> float:
    """Run ``nb`` top to bottom in a fresh kernel, in place; return the seconds it took.

    ``env`` replaces the kernel's environment variables (default: this process's).
    Each output is kept as it was when its cell finished (see ``_AsEachCellEnded``).
    """
    t0 = time.perf_counter()
    kwargs = {} if env is None else {"env": env}
    _AsEachCellEnded(
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
