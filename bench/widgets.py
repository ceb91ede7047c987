"""Widget benchmark: messages a second sent, and emit-to-display latency in Chromium.

A thread in the kernel pushes 100,000 events a second (batches of 1,000 every
10 ms, each value the time it was emitted) into a stream shown by a
StreamTable. In headless Chromium a MutationObserver notes, at every redraw,
how old the newest value on screen is. The kernel counts the messages the
widget sent. Needs Debian's chromium and the test extras (playwright).

Run: ``make bench`` or ``.venv/bin/python bench/widgets.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import chromium, jupyter_server

SOURCE = """\
import threading, time
from livestack_nb.stream import DataStream
from livestack_nb.widgets import StreamTable, pump

RATE, SECONDS, BATCH = 100_000, {seconds}, 1_000
stream = DataStream("bench")
table = StreamTable(stream, max_rows=5, title="bench")

def source():
    start = time.perf_counter()
    for k in range(int(RATE * SECONDS / BATCH)):
        due = start + k * BATCH / RATE
        while time.perf_counter() < due:
            time.sleep(0.0005)
        now = time.time()
        stream.push([now] * BATCH)
    stream.end()

table
"""

RUN = """\
sent0 = table.messages_sent
t0 = time.perf_counter()
worker = threading.Thread(target=source)
worker.start()
worker.join()
elapsed = time.perf_counter() - t0
print(f"RESULT events={len(stream)} seconds={elapsed:.2f} "
      f"events_per_s={len(stream) / elapsed:.0f} msgs={table.messages_sent - sent0} "
      f"msgs_per_s={(table.messages_sent - sent0) / elapsed:.1f}")
"""

OBSERVE = """
() => {
  window.__lat = [];
  const el = document.querySelector('.lsnb-table.lsnb-live tbody');
  new MutationObserver(() => {
    const cell = el.querySelector('tr td:nth-child(3)');
    if (cell) window.__lat.push(Date.now() / 1000 - parseFloat(cell.textContent));
  }).observe(el, { childList: true });
  return true;
}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "nb"
        root.mkdir()
        nb = new_notebook(
            cells=[new_code_cell(SOURCE.format(seconds=args.seconds)), new_code_cell(RUN)],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        )
        nbformat.write(nb, root / "bench.ipynb")
        with jupyter_server(root, Path(tmp) / "server.log") as server, chromium() as browser:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(
                f"{server.url}/lab/workspaces/{uuid.uuid4().hex}/tree/bench.ipynb?reset&token={server.token}"
            )
            page.get_by_text("| Idle").first.wait_for(timeout=60_000)
            # the first cell: the live table; then watch it; then the second cell runs the source
            page.locator(".jp-Cell").first.click()
            page.keyboard.press("Shift+Enter")
            page.wait_for_selector(".lsnb-table.lsnb-live", timeout=60_000)
            page.wait_for_function(OBSERVE, timeout=10_000)
            page.keyboard.press("Shift+Enter")
            out = page.locator(".jp-OutputArea-output", has_text="RESULT events=")
            out.wait_for(timeout=(args.seconds + 60) * 1000)
            kernel = out.text_content() or ""
            lat = sorted(page.evaluate("window.__lat"))
    fields = dict(kv.split("=") for kv in kernel.split("RESULT", 1)[1].split())
    print(f"source: {fields['events']} events in {fields['seconds']} s ({fields['events_per_s']} events/s)")
    print(f"table widget: {fields['msgs']} messages, {fields['msgs_per_s']} messages/s")
    if lat:
        q = statistics.quantiles(lat, n=20)
        print(
            f"emit-to-display latency over {len(lat)} redraws: "
            f"median {statistics.median(lat) * 1000:.0f} ms, p95 {q[18] * 1000:.0f} ms, "
            f"max {lat[-1] * 1000:.0f} ms"
        )
    else:
        print("no redraw observed")


if __name__ == "__main__":
    main()
