"""The teaching notebooks: each runs in a fresh kernel in under a minute, teaches
what it promises, ends with nothing left running, and is saved readable.

Each notebook is executed once (cached) with a first cell that keeps track of
every env it makes and a last cell that reports what is still running (threads,
jobs of this kernel, envs, child processes); the checks below look at that run
and at the notebook as saved in ``examples/``.

Notebook 08 starts processes of its own (a crashing kitchen, redis-server,
worker processes): it is also run cut short by an error, and without
redis-server on PATH, to check that it cleans up after itself and skips only
its Redis part. Under ``CI`` a missing redis-server fails its checks.
"""

from __future__ import annotations

import functools
import html as htmllib
import inspect
import json
import os
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from examples_support import EXAMPLES_DIR, examples, execute
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell

from livestack_nb.testing import wait_until

README = EXAMPLES_DIR.parent / "README.md"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

NAMES = [
    "00_quickstart",
    "01_jobspec_recipe",
    "02_livejob_chef",
    "03_liveworker_staff",
    "04_datastreams",
    "05_liveflow_kitchen",
    "06_live_dashboard",
    "07_livestack_classics",
    "08_durable_scaleout",
    "09_slow_motion",
    "10_windows",
    "11_kitchen_controls",
]

# The seed concepts of each notebook (issue #5): a concept -> a pattern that must
# be in a code cell that ran without an error.
CONCEPTS: dict[str, dict[str, str]] = {
    "00_quickstart": {
        "a spec": r"@ls\.job_spec\ndef bake",
        "a job": r"bake\.start\(",
        "a live table": r"^job\.output\(\)$",
        "a two-step flow": r"flow\.connect\(bake, box\)",
    },
    "01_jobspec_recipe": {
        "input streams by tag": r'inputs=\{"dough": Dough, "sauce": str\}',
        "output streams by tag": r'outputs=\{"pizza": Pizza, "log": str\}',
        "parameters (options)": r"options=Recipe",
        "type safety": r"except ls\.DataValidationError as e",
        "strict tags": r"def strict_basil\(wanted: StrictBool\)",
        "reading the error": r"e\.spec.*e\.tag.*e\.field",
        "reuse": r"bake\.run\(\[Dough\(\)\], options=",
        "a spec as an operator": r"bake\.op\(",
        "the registry": r"env\.specs\(\)",
        "an interface spec": r'ls\.JobSpec\("taste"',
        "a worker defined later": r"taste\.define_worker\(",
    },
    "02_livejob_chef": {
        "options (extra spicy)": r"job\.options\.extra_spicy",
        "logger": r"log = job\.logger",
        "spec": r"job\.spec\.name",
        "graph": r"len\(job\.graph\)",
        "input": r"for order in job\.input",
        "output": r'job\.output\("fridge"\)\.emit',
        "invoke (a child job)": r"job\.invoke\(make_sauce",
        "storage provider (large value by reference)": r"job\.storage\.put\(SPECIAL_CHEESE\)",
        "live environment": r"job\.env\.name",
        "job panel": r"JobPanel\(job\)",
    },
    "03_liveworker_staff": {
        "worker definition": r"ls\.job_spec\(name=.*concurrency=concurrency\)",
        "concurrency 1 vs 4": r'cook_with\("one_cook", 1\), cook_with\("four_cooks", 4\)',
        "jobs over time (a timeline)": r"ls\.widgets\.JobTimeline\(\[one_cook, four_cooks\]",
        "jobs over time (table)": r"waits\(alone \+ team\)",
        "initialization": r"@ls\.job_spec\(init=preheat\)",
        "retries": r"retries=3",
        "skip after retries": r'on_error="skip"',
        "a failed job": r"except ls\.JobFailed",
        "workers and jobs": r"oven_job\.statuses",
    },
    "04_datastreams": {
        "buffer": r"ops\.buffer_with_count\(",
        "window": r"ops\.window_with_count\(",
        "scan": r"ops\.scan\(",
        "throttle": r"ops\.throttle_first\(",
        "live subscribe": r"readings\.subscribe\(late\.append\)",
        "replay": r"readings\.replay\(\)",
        "history bounds": r"ls\.LiveEnv\(history=50\)",
        "lineage": r"alarm_dp\.parents",
        "to_pandas": r"readings\.to_pandas\(\)",
        "a pandas analysis": r"groupby\(\"oven\"\)",
    },
    "05_liveflow_kitchen": {
        "wiring cell by cell": r"kitchen\.connect\(take_order, split\)\nkitchen$",
        "labels (two ovens)": r'bake\.labeled\("oven-1"\), bake\.labeled\("oven-2"\)',
        "a wiring error": r"except ls\.WiringError",
        "transforms": r"transform=label",
        "exposures": r'kitchen\.expose\(box\.output\(\), "boxes"\)',
        "a nested flow": r'restaurant\.connect\(waiter, kitchen\.input\("orders"\)\)',
        "a cycle": r'proofing\.connect\(check\.output\("again"\), rise\)',
    },
    "06_live_dashboard": {
        "a simulated kitchen": r'outputs=\{"orders": Order, "temps": Ovens\}',
        "rolling statistics": r"statistics\.fmean\(w\)",
        "live graph": r"FlowGraph\(run",
        "live plots": r'StreamPlot\(run\.output\("temps"\)',
        "live table": r'StreamTable\(run\.output\("stats"\)',
        "pandas": r"\.rolling\(20\)",
    },
    "07_livestack_classics": {
        "a greeting": r'greet\.run\(\["Livestack"',
        "multiple inputs": r'inputs=\{"fahrenheit": float, "celsius": float\}',
        "multiple outputs": r'outputs=\{"even": int, "odd": int\}',
        "a flow with a transform": r"ls\.conn\(greet, echo, transform=",
        "exposures": r'ls\.expose\(echo\.output\(\), "echoes"\)',
        "a live counter": r"async def counter",
        "two loops sharing a node": r"ls\.conn\(the_pass, chef\),\n\s+ls\.conn\(the_pass, sous_chef\)",
        "a conversation that ends": r"talk\.end\(\).*talk\.wait\(timeout=10\)",
        "parallel attempts": r"ls\.ParallelAttempts\(",
        "a delayed attempt": r"ls\.attempt\(electric_oven, after=0\.1\)",
        "reading outputs with a for loop": r"^for pizza in evening\.output\(\):",
        "async for": r"async for pizza in evening\.output\(\)",
        "next_value": r"at_the_pass\.next_value\(timeout=5\)",
    },
    "08_durable_scaleout": {
        "an SQLite vault": r'url = f"sqlite:///\{db\}"\nenv = ls\.LiveEnv\(vault=url\)',
        "env.flush()": r"^env\.flush\(\)",
        "the file, read with sqlite3": r"sqlite3\.connect\(db\)",
        "a kitchen killed after wait and flush": (
            r"dinner\.wait\(timeout=30\).*env\.flush\(\).*os\.kill\(os\.getpid\(\), signal\.SIGKILL\)"
        ),
        "a new env on the same file": r"^morning = ls\.LiveEnv\(vault=url\)",
        "env.jobs()": r"morning\.jobs\(\)",
        "env.job(job_id)": r"morning\.job\(dinner_id\)",
        "the history read back from the file": r"dinner\.output\(\)\.values\(\)",
        "a job killed mid-run": r"late\.wait\(timeout=1\)",
        "redis-server on loopback, saving nothing": r"redis_url = kitchen\.redis_server\(\)",
        "two worker processes": r'for name in \("A", "B"\).*"worker", "pizza_line:bake", "--env", redis_url',
        "nothing left if a cell fails": r"kitchen = Processes\(workdir\)",
        "a pure client": r"ls\.LiveEnv\(vault=redis_url, autostart=False\)",
        "a live table of outputs": r"StreamTable\(job\.output\(\)",
        "a worker killed mid-job": r'ovens\["A"\]\.send_signal\(signal\.SIGKILL\)',
        "which worker took which job": r'"taken by":',
        "one run per worker, from job.statuses": r"job\.statuses\]\.count\(ls\.JobStatus\.RUNNING\)",
        "livestack-nb jobs": r'"jobs", "--env", redis_url',
        "SIGTERM drains": r'ovens\["B"\]\.send_signal\(signal\.SIGTERM\)',
        "redis-server stopped": r"kitchen\.redis_process\.terminate\(\)",
        "envs closed, temp dir removed": r"^env\.close\(\)\nmorning\.close\(\).*^shutil\.rmtree\(workdir\)",
    },
    "09_slow_motion": {
        "a stepped run": r"run = kitchen\.start\(step=True\)",
        "its live graph": r"ls\.widgets\.FlowGraph\(run\)",
        "one hop per step": r"^hop = run\.step\(\)",
        "the hops so far": r"for h in run\.hops:",
        "slow motion": r"evening\.play\(interval=0\.1\)",
        "the same hops again": r"route\(again\) == route\(evening\)",
        "a transform": r"transform=to_order",
        "a nested flow": r'ls\.conn\(waiter, kitchen\.input\("orders"\)',
        "a datapoint by id": r"env\.datapoint\(last_hop\.datapoint_id\)",
        "its journey": r"pizza\.lineage\(\)",
    },
    "10_windows": {
        "tumbling windows on event time": r'ls\.window\(\n\s+seconds=60, time="at", lateness=30, key="pizza"',
        "a check against pandas": r'resample\("60s"\)',
        "sliding count windows": r"count=20, slide=5",
        "a quantile": r'ls\.agg\.quantile\("oven_s", 0\.95\)',
        "a plot per key": r'StreamPlot\(ovens\.output\(\), x="seq", y="p95_s", by="key"',
        "a table per key": r'StreamTable\(ovens\.output\(\), by="key"',
        "session windows": r"gap=600",
        "a user function as an aggregate": r'"minutes": lambda os:',
        "ls.key_by": r'ls\.key_by\("pizza"\)',
        "job.state": r"job\.state\[pizza\] = job\.state\.get\(pizza, 0\) \+ 1",
        "an eviction rule": r"job\.state\.bound\(max_keys=1000\)",
        "a restart on the same file": r"^morning = ls\.LiveEnv\(vault=url\)",
        "the DataFrame path": r"input=pd\.DataFrame",
    },
    "11_kitchen_controls": {
        "a form from the tag's type": r"form = ls\.widgets\.JobInput\(tally\)",
        "submit does what Feed does": r'form\.submit\(by=2, who="chef"\)',
        "an error shown by its field": r"form\.errors\[\"by\"\]",
        "a bound slider": r"ls\.widgets\.bind\(knob, heat\.input\(\), transform=float\)",
        "the End button": r"form\.end\(\)",
    },
}

#: What 08 shows of its Redis part (the rest of its SHOWS comes from the SQLite part).
REDIS_SHOWS = [
    "serving spec 'bake' from redis://127.0.0.1:",
    "oven A killed part-way through table",
    "taken from the queue by worker oven-A",
    "ID               SPEC  STATUS     CREATED",
    "oven B exited with 0",
    "livestack-nb worker oven-B: stopped after",
    "redis-server exited with 0",
    "still running: []",
]
#: What 08 shows instead when redis-server is not installed.
NO_REDIS_SHOWS = [
    "redis-server is not on PATH: the Redis part of this notebook is SKIPPED.",
    "skipped: redis-server is not installed",
]

# What the run must show: text in the outputs of the executed notebook.
SHOWS: dict[str, list[str]] = {
    "00_quickstart": ["12in margherita, spice 2", "[12in napoletana, spice 3]", "field 'size'"],
    "01_jobspec_recipe": [
        "field: hydration",
        "tomato on 00: hot!",
        "has no worker",
        "bool:       ['with basil', 'plain', 'with basil']",
        "input tag 'default' expects strict bool: Input should be a valid boolean; got 'yes'",
        "StrictBool: ['with basil']",
    ],
    "02_livejob_chef": ["heat 4", "same key again: True", "kitchen plan: flow 'trattoria'"],
    "03_liveworker_staff": [
        "baked on try 3",
        "the oven door fell off",
        "#e53935",
        "preheated 1 time",
        "one cook vs four cooks: 16 jobs: 16 completed",
        "one_cook · concurrency 1",
    ],
    "04_datastreams": ["replay after the end:    300 values", "kept in memory: 50", "parent: "],
    "05_liveflow_kitchen": ["oven-2</span> (bake): completed", "served: [", "('focaccia', 3)"],
    "06_live_dashboard": ["rolling oven statistics", "· ended"],
    "07_livestack_classics": [
        "Hello, Livestack!",
        "even: [0, 2, 4, 6, 8]",
        "count=40",
        "conversation completed",
        "Last table. Clean down.              sous-chef: Cleaning down, chef.",
        "margherita: from the gas oven",
        "calzone: from the electric oven",
        "wood_oven      cancelled",
        "out of the electric oven: calzone",
        "async for: ['capricciosa', 'calzone', 'bianca']",
        "no more orders: ls.StreamEnded",
    ],
    "09_slow_motion": [
        "boxes so far: []",
        "#0 outside -> take_order.default: Order(pizza='margherita', table=7)",
        "#3 box.default -> outside: box: margherita for table 7",
        "12 hops;",
        "same hops both times: True",
        "#2 take_order.default -> oven.default in slow-kitchen: Dough(pizza='diavola', table=4)",
        "slow-kitchen (in)          Order(pizza='diavola', table=4)",
    ],
    "10_windows": [
        "late=7",
        "same as pandas: True",
        "oven-3 runs slow late in the evening: True",
        "28 visits",
        "same as counting all at once: True",
        "same windows as value by value: True",
    ],
    "08_durable_scaleout": [
        "last night's kitchen ended with SIGKILL",
        "completed · ['marinara', 'capricciosa', 'bianca', 'calzone']",
        "late order: running",
        "no gap, no duplicate: True",
        "there is nothing to wait for",
        "temporary directory removed: True",
    ],
    "11_kitchen_controls": [
        "fed 3 clicks",
        "fed: False",
        "field 'by': Input should be less than or equal to 10",
        "fed 3>",
        "final count: 8",
    ],
}

TRACK = """\
import livestack_nb.env as _lsenv
_seen_envs = set()
get_ipython().events.register("post_execute", lambda: _seen_envs.update(_lsenv._all_envs))
"""


def children_of(pid: int) -> list[tuple[str, str, str]]:
    """(pid, state, name) of each process whose parent is ``pid``, read from /proc (zombies too)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if rest[1] == str(pid):
            found.append((entry, rest[0], name))
    return found


def alive(pid: str) -> bool:
    """Whether process ``pid`` still runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# Runs after the notebook, with children_of() defined before it. It looks at the jobs
# this kernel ran (``env._jobs``), not at what the vaults list: a durable vault also
# lists jobs of other processes (08's crashed kitchen), and may be gone by the end (08
# stops its redis-server and removes its SQLite file).
PROBE = """\
import json as _json
import os as _os
from livestack_nb.testing import livestack_threads as _threads, wait_until as _wait
from livestack_nb import WaitTimeout as _WaitTimeout
_seen_envs.update(_lsenv._all_envs)
try:
    _wait(lambda: not _threads(), timeout=10)
except _WaitTimeout:
    pass
_ran = [(e, j) for e in _seen_envs for j in list(e._jobs.values())]
print("PROBE" + _json.dumps({
    "threads": [t.name for t in _threads()],
    "open_envs": [e.name for e in _seen_envs if not e.closed],
    "unfinished": [j.job_id for _, j in _ran if not j.status.done],
    "cut_short": [
        j.job_id for e, j in _ran if any("the env closed" in r.message for r in e.job(j.job_id).logs)
    ],
    "children": [" ".join(p) for p in children_of(_os.getpid())],
}))
"""


@dataclass
class Ran:
    nb: nbformat.NotebookNode
    seconds: float
    probe: dict[str, list[str]]


def redis_installed() -> bool:
    """Whether 08 can run its Redis part; under CI it must."""
    if shutil.which("redis-server"):
        return True
    if os.environ.get("CI"):
        pytest.fail("redis-server is not installed: notebook 08 would skip its Redis part")
    return False


def without_redis_server() -> dict[str, str]:
    """This environment with the directories that hold redis-server taken off PATH."""
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    keep = [d for d in dirs if d and not os.path.exists(os.path.join(d, "redis-server"))]
    return dict(os.environ, PATH=os.pathsep.join(keep))


@functools.cache
def ran(name: str, no_redis: bool = False) -> Ran:
    path = EXAMPLES_DIR / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, new_code_cell(TRACK))
    nb.cells.append(new_code_cell("import os\n" + inspect.getsource(children_of) + PROBE))
    seconds = execute(nb, path.parent, timeout=60, env=without_redis_server() if no_redis else None)
    probe_out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    probe = json.loads(probe_out.split("PROBE", 1)[1])
    nb.cells = nb.cells[1:-1]
    return Ran(nb, seconds, probe)


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            parts.append(o.get("text", ""))
            for mime in ("text/plain", "text/html"):
                parts.append(str(o.get("data", {}).get(mime, "")))
    return "\n".join(parts)


def test_the_series_is_complete():
    assert [p.stem for p in examples()] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_runs_top_to_bottom_in_a_fresh_kernel_in_under_a_minute(name: str):
    r = ran(name)
    errors = [o for c in r.nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert r.seconds < 60, f"{name} took {r.seconds:.1f} s"
    stderr = [o["text"] for c in r.nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert not any("Traceback" in t for t in stderr), stderr


@pytest.mark.parametrize("name", NAMES)
def test_ends_with_no_threads_or_jobs_left_running(name: str):
    probe = ran(name).probe
    assert probe == {"threads": [], "open_envs": [], "unfinished": [], "cut_short": [], "children": []}


@pytest.mark.parametrize("name", NAMES)
def test_every_seed_concept_appears_and_runs(name: str):
    nb = ran(name).nb
    code = [c for c in nb.cells if c.cell_type == "code"]
    for concept, pattern in CONCEPTS[name].items():
        cells = [c for c in code if re.search(pattern, c.source, re.M | re.S)]
        assert cells, f"{name}: no cell shows {concept!r} ({pattern})"
        assert all(c.execution_count for c in cells), f"{name}: {concept!r} did not run"
        assert not [o for c in cells for o in c.outputs if o.output_type == "error"]
    text = _text(nb)
    shows = SHOWS[name]
    if name == "08_durable_scaleout":
        shows = shows + (REDIS_SHOWS if redis_installed() else NO_REDIS_SHOWS)
    for shown in shows:
        assert shown in text, f"{name}: the run does not show {shown!r}"


@pytest.mark.parametrize("name", NAMES)
def test_has_a_story_and_a_try_it(name: str):
    nb = nbformat.read(EXAMPLES_DIR / f"{name}.ipynb", as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {name[:2]} · ")
    assert any("**Try it:**" in c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("name", NAMES)
def test_is_saved_with_its_outputs_and_widget_state(name: str):
    nb = nbformat.read(EXAMPLES_DIR / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "run it top to bottom"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    views = 0
    for cell in code:
        kinds = [
            "widget" if WIDGET_VIEW in o.get("data", {}) else "other"
            for o in cell.outputs
            if o.output_type in ("display_data", "execute_result")
        ]
        for i, kind in enumerate(kinds):
            if kind == "widget":
                views += 1
                shown = [o for o in cell.outputs if o.output_type in ("display_data", "execute_result")]
                assert "lsnb-snapshot" in shown[i + 1]["data"].get("text/html", ""), cell.source
    if views:
        state = nb.metadata["widgets"][WIDGET_STATE]["state"]
        assert len(state) >= views
    raw = (EXAMPLES_DIR / f"{name}.ipynb").read_text()
    for where in (EXAMPLES_DIR.parent, Path.home(), Path(tempfile.gettempdir())):
        assert f"{where}/" not in raw, f"a path of this machine ({where}) is saved in the notebook"


@pytest.mark.parametrize("name", NAMES)
def test_the_default_html_export_shows_content_not_loading_widget(name: str):
    nb = nbformat.read(EXAMPLES_DIR / f"{name}.ipynb", as_version=4)
    page, _ = HTMLExporter().from_notebook_node(nb)
    text = htmllib.unescape(re.sub(r"<[^>]+>", " ", page))
    assert "Loading widget" not in text
    views = sum(1 for c in nb.cells for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {}))
    assert page.count('class="lsnb-snapshot"') == views


def _cell_text(nb: nbformat.NotebookNode, pattern: str) -> str:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and re.search(pattern, c.source, re.M | re.S)]
    return _text(nbformat.v4.new_notebook(cells=[cell]))


@pytest.mark.parametrize("saved", [False, True], ids=["as run", "as saved"])
def test_an_output_shows_its_own_cells_moment_not_what_later_cells_fed(saved: bool):
    """Widgets refresh their static snapshot as long as the kernel runs; the notebook is
    kept (and saved) with each output as it was when its own cell ended."""

    def nb(name: str) -> nbformat.NotebookNode:
        return nbformat.read(EXAMPLES_DIR / f"{name}.ipynb", as_version=4) if saved else ran(name).nb

    table = _cell_text(nb("00_quickstart"), r"feed\(Order\(pizza=\"funghi\".*^job\.output\(\)$")
    assert "bake-" in table and "marinara" not in table  # marinara is fed by the next cell
    step1 = _cell_text(nb("05_liveflow_kitchen"), r"kitchen\.connect\(take_order, split\)\nkitchen$")
    assert "take_order" in step1 and "oven-1" not in step1  # the ovens are wired by the next cells
    step3 = _cell_text(nb("05_liveflow_kitchen"), r"transform=label\)\nkitchen$")
    assert "oven-2" in step3 and "boxes" not in step3 and "completed" not in step3


def test_the_readme_links_each_notebook_with_one_line():
    lines = README.read_text().splitlines()
    for name in NAMES:
        linked = [ln for ln in lines if f"(examples/{name}.ipynb)" in ln]
        assert len(linked) == 1, name
        assert re.match(r"^- \[`?\w+`?\]\(examples/\w+\.ipynb\) . \S", linked[0]), linked[0]


# -- 08: the processes it starts ---------------------------------------------------------

DURABLE = "08_durable_scaleout"


def _rows(html: str) -> list[list[str]]:
    """The body rows of a DataFrame's HTML, as cell texts (the index first)."""
    body = html.split("<tbody>", 1)[1]
    return [
        [
            htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", r, re.S)
        ]
        for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_08_two_workers_share_the_orders_and_the_one_killed_mid_order_loses_nothing():
    if not redis_installed():
        pytest.skip("redis-server is not installed")
    nb = ran(DURABLE).nb
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and '"taken by":' in c.source]
    (table,) = [o["data"]["text/html"] for o in cell.outputs if o.output_type == "execute_result"]
    rows = _rows(table)
    assert len(rows) == 4
    for _, _, status, taken, baked, runs, seen, stored in rows:
        assert (status, seen, stored) == ("completed", "True", "True")
        assert len(baked.split()) == 6 and set(baked.split()) <= {"A", "B"}
        assert int(runs) == len(taken.split())  # one run per worker that took it
    (taken_over,) = [r for r in rows if r[5] == "2"]  # the order oven A was baking when killed
    assert taken_over[3] == "A B" and taken_over[4].startswith("A ") and taken_over[4].endswith(" B")
    assert all(r[5] == "1" for r in rows if r is not taken_over)


def test_08_a_cell_failing_while_its_workers_bake_leaves_no_process_and_no_file():
    """An error half-way: the kernel stops, and its atexit hooks stop redis-server and the
    workers (in sessions of their own, out of reach of the kernel's own shutdown) and remove
    the temporary directory."""
    if not redis_installed():
        pytest.skip("redis-server is not installed")
    path = EXAMPLES_DIR / f"{DURABLE}.ipynb"
    nb = nbformat.read(path, as_version=4)
    ordered = next(i for i, c in enumerate(nb.cells) if "orders = {table: bake.start(" in c.source)
    nb.cells = nb.cells[: ordered + 1]  # the orders are in the ovens when the next cell fails
    nb.cells.append(
        new_code_cell('print("PIDS", *kitchen.pids(), "DIR", workdir)\nraise RuntimeError("oops")')
    )
    with pytest.raises(CellExecutionError, match="oops"):
        execute(nb, path.parent)
    said = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    pids, workdir = said.split("PIDS", 1)[1].split("DIR")
    pids = pids.split()
    assert len(pids) == 3  # redis-server and two workers
    try:
        wait_until(lambda: not any(alive(p) for p in pids), timeout=30, message="the processes have ended")
        assert not Path(workdir.strip()).exists()
    finally:
        for p in pids:
            if alive(p):
                os.kill(int(p), signal.SIGKILL)


def test_08_without_redis_server_skips_only_its_redis_part_and_says_so():
    r = ran(DURABLE, no_redis=True)
    errors = [o for c in r.nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    text = _text(r.nb)
    for shown in SHOWS[DURABLE] + NO_REDIS_SHOWS:
        assert shown in text, f"the run without redis-server does not show {shown!r}"
    assert not [s for s in REDIS_SHOWS if s in text], text
    skipped = [
        c for c in r.nb.cells if c.cell_type == "code" and c.source.startswith("# needs redis-server\n")
    ]
    assert len(skipped) >= 5
    for c in skipped:
        assert [o.get("text") for o in c.outputs] == ["skipped: redis-server is not installed\n"], c.source
    assert r.probe == {"threads": [], "open_envs": [], "unfinished": [], "cut_short": [], "children": []}
