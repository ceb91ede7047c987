"""The README's quickstart runs as written and prints what its comments say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_quickstart_runs_as_written():
    code = re.search(r"## Quickstart\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "['12in margherita, spice 2']",
        "['[10in funghi, spice 0]']",
    ]


def test_durable_kitchen_example_runs_across_two_processes(tmp_path):
    section = README.read_text().split("## Durable kitchen", 1)[1].split("\n## ", 1)[0]
    first, second = re.findall(r"```python\n(.*?)```", section, re.S)
    for code in (first, second):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["square completed", "[0, 1, 4, 9, 16]"]
    assert (tmp_path / "kitchen.db").exists()


def test_loops_and_races_examples_run_as_written():
    section = README.read_text().split("## Loops, races and exposures", 1)[1].split("\n## ", 1)[0]
    loop, race = re.findall(r"```python\n(.*?)```", section, re.S)
    out = subprocess.run([sys.executable, "-c", loop], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["completed Yes chef: clean down."]
    out = subprocess.run([sys.executable, "-c", race], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["['margherita from the gas oven', 'calzone from the wood oven']"]


def test_writing_a_processor_example_prints_what_the_text_says():
    section = README.read_text().split("## Writing a processor", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["00 tomato", "rye pesto", "['got dough', 'got sauce']"]


def test_windows_example_runs_as_written():
    section = README.read_text().split("## Windows, keys and aggregates", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == re.findall(r"# (\{.*\})$", code, re.M)  # what the comments say


def test_job_timeline_example_prints_one_lane_for_one_cook_and_four_for_four():
    section = README.read_text().split("### Jobs over time", 1)[1].split("\n### ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[('one_cook', 1), ('four_cooks', 4)]"]
    assert "# [('one_cook', 1), ('four_cooks', 4)]" in code  # what the comment says


def test_slow_motion_widget_example_prints_what_its_comments_say():
    section = README.read_text().split("### A flow in slow motion", 1)[1].split("\n### ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == re.findall(r"^# (.*)$", code, re.M)  # what the comments say


def test_step_through_a_flow_example_prints_what_its_comments_say():
    section = README.read_text().split("## Step through a flow", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "[]",
        "#0 outside -> knead.default: margherita",
        "#1 knead.default -> bake.default: dough for margherita",
        "#2 bake.default -> outside: pizza from dough for margherita",
        "margherita",
    ]
