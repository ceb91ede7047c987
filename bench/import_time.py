"""How long ``import livestack_nb`` takes, as a ratio to importing what it
stands on: ``import reactivex, pydantic, pandas``.

Run with ``make bench`` (or ``.venv/bin/python bench/import_time.py [N]``).
Every import runs in a fresh interpreter (nothing cached in ``sys.modules``),
the statements take turns, and the best of N is kept for each, so a machine
that gets busier during the run moves every statement alike. The time is
taken inside the subprocess around the import statement alone (interpreter
start-up is reported separately); the files are in the OS cache after the
first round, and so is the package's bytecode, as in any notebook session
after the first.

Also lists the modules ``import livestack_nb`` loads that are not part of the
standard library, and checks that none of the heavy ones is among them
(``tests/test_public_api.py`` asserts the same).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

STATEMENTS = {
    "import livestack_nb": "import livestack_nb",
    "import reactivex, pydantic, pandas": "import reactivex, pydantic, pandas",
    "import reactivex, pydantic": "import reactivex, pydantic",
    # pydantic builds its model machinery on the first model class, as
    # livestack_nb does at import (its options models) and any notebook does
    "  + one pydantic model": "import reactivex, pydantic; pydantic.create_model('M', x=(int, ...))",
}

# As in a user's session: bytecode is cached after the first import (some
# shells set PYTHONDONTWRITEBYTECODE, which would time compiling the package).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

TIMER = "import time; t0 = time.perf_counter(); {stmt}; print(time.perf_counter() - t0)"

HEAVY = ("pandas", "numpy", "ipywidgets", "IPython", "ipykernel", "traitlets", "redis", "sqlite3", "streamz")


def import_seconds(stmt: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", TIMER.format(stmt=stmt)], check=True, capture_output=True, text=True, env=ENV
    ).stdout
    return float(out.split()[-1])


def startup_seconds() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=ENV)
    return time.perf_counter() - t0


def loaded_modules() -> list[str]:
    code = (
        "import sys, json; before = set(sys.modules); import livestack_nb; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(json.dumps(sorted(m for m in new if m not in sys.stdlib_module_names "
        "and not m.startswith('_sysconfigdata'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=ENV
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    for stmt in STATEMENTS.values():  # warm the OS file cache
        import_seconds(stmt)
    best = dict.fromkeys(STATEMENTS, float("inf"))
    start = float("inf")
    order = list(STATEMENTS.items())
    for _ in range(n):
        order.reverse()
        for name, stmt in order:
            best[name] = min(best[name], import_seconds(stmt))
        start = min(start, startup_seconds())
    base = best["import reactivex, pydantic, pandas"]
    print(f"import time in a fresh interpreter, best of {n} (interpreter start-up {start * 1000:.0f} ms)\n")
    print(f"{'statement':<38}{'ms':>8}{'vs reactivex+pydantic+pandas':>31}")
    for name, t in best.items():
        print(f"{name:<38}{t * 1000:>8.1f}{t / base:>30.2f}x")
    own = best["import livestack_nb"] - best["  + one pydantic model"]
    print(f"\nlivestack_nb's own modules: {own * 1000:.0f} ms on top of reactivex + pydantic + one model")
    loaded = loaded_modules()
    heavy = [m for m in loaded if m in HEAVY]
    print(f"third-party packages it loads: {', '.join(loaded)}")
    print(f"heavy packages loaded at import: {', '.join(heavy) if heavy else 'none'}")


if __name__ == "__main__":
    main()
