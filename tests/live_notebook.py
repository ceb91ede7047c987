"""The notebook the static and browser tests run: a table, a plot, graphs, a panel, a failure."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from widget_support import HOSTILE

SETUP = """\
import time
import livestack_nb as ls
from livestack_nb.widgets import StreamPlot, JobPanel
from pydantic import BaseModel

class Reading(BaseModel):
    sensor: str
    value: float

@ls.job_spec(inputs={"default": int}, outputs={"default": Reading})
def sensor(job: ls.LiveJob):
    for n in job.input:  # one value at a time, so widgets see it arrive
        for i in range(n):
            time.sleep(DELAY)
            job.output.emit(Reading(sensor="probe-" + str(i % 3), value=(i % 50) / 5))

@ls.job_spec
def label(r: Reading) -> str:
    return r.sensor

@ls.job_spec
def explode(name: str) -> str:
    raise ValueError("oven on fire")
"""

TABLE = """\
job = sensor.start()
job.feed(N)
job.end()
job.output()
"""

PLOT = """\
display(StreamPlot(job.output(), y=["value"], kind="bar", window=40))
StreamPlot(job.output(), y=["value"], kind="line")
"""

HOSTILE_CELL = f"""\
names = ls.JobSpec("names", input=str, output=str)
names.define_worker(lambda s: s)
hostile = names.start()
hostile.feed({HOSTILE!r})
hostile.feed("long " * 100)
hostile.end()
hostile.output()
"""

FLOW = """\
flow = ls.Liveflow("bakery")
flow.connect(sensor, label)
flow.connect(label, explode)
flow.expose(sensor.input(), "orders")
run = flow.start()
run.input("orders").feed(30)
run.input("orders").end()
run
"""

PANEL = """\
JobPanel(job)
"""

WAIT = """\
job.wait(timeout=60)
hostile.wait(timeout=60)
try:
    run.wait(timeout=60)
except ls.JobFailed as e:
    print("flow failed as expected:", type(e.__cause__).__name__)
"""


def live_notebook(n: int = 400, wait: bool = True, delay: float = 0.0) -> nbformat.NotebookNode:
    """The notebook, with ``N`` values from the sensor, ``delay`` s apart; ``wait=False``
    leaves jobs running at the end."""
    cells = [
        new_markdown_cell("# Live widgets"),
        new_code_cell(f"N = {n}\nDELAY = {delay}\n" + SETUP),
        new_code_cell(TABLE),
        new_code_cell(PLOT),
        new_code_cell(HOSTILE_CELL),
        new_code_cell(FLOW),
        new_code_cell(PANEL),
    ]
    if wait:
        cells.append(new_code_cell(WAIT))
    return new_notebook(
        cells=cells,
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )


HOSTILE_WIDGETS = f"""\
import livestack_nb as ls
from livestack_nb.widgets import FlowGraph, JobPanel, StreamPlot
from pydantic import BaseModel

H = {HOSTILE!r}

# a plot whose series, title and x field are named by it, one series of strings it cannot draw
points = ls.JobSpec("points", input=int, output=dict)
points.define_worker(lambda i: {{H: float(i % 7), "words": H}})
drawn = points.start()
drawn.feed_many(range(60))
drawn.end()
drawn.wait(timeout=60)
display(StreamPlot(drawn.output(), x="seq", y=[H, "words"], title=f"plot {{H}}"))

# a flow whose name, port, node label and spec name carry it, and a node failing with it
echo = ls.JobSpec("echo", input=str, output=str)
echo.define_worker(lambda s: s)
bad = ls.JobSpec(f"spec {{H}}", input=str, output=str)

def boom(s: str) -> str:
    raise ValueError(f"failed on {{s}}")

bad.define_worker(boom)
flow = ls.Liveflow(f"flow {{H}}")
flow.connect(echo, bad.labeled(f"label {{H}}"))
flow.expose(echo.input(), f"in {{H}}")
run = flow.start()
run.input(f"in {{H}}").feed(H)
run.input(f"in {{H}}").end()
display(FlowGraph(run))

# a job with it as an option value, in a log record and in the traceback of its failure
class Note(BaseModel):
    note: str = ""

@ls.job_spec(name=f"panel {{H}}", inputs={{"default": str}}, outputs={{"default": str}}, options=Note)
def talk(job: ls.LiveJob):
    for s in job.input:
        job.logger.warning("seen %s", s)
        raise ValueError(f"traceback {{s}}")

told = talk.start(options={{"note": H}})
told.feed(H)
told.end()
JobPanel(told)
"""


def hostile_notebook() -> nbformat.NotebookNode:
    """One notebook showing :data:`HOSTILE` through a StreamPlot, a FlowGraph and a JobPanel."""
    return new_notebook(
        cells=[new_markdown_cell("# Hostile strings"), new_code_cell(HOSTILE_WIDGETS)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
