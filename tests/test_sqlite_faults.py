"""SQLite under SIGKILL at random moments, the short version (see tests/sqlite_faults.py;
``make faults-sqlite`` runs the long one). ``LIVESTACK_FAULT_SEED`` replays another seed."""

from __future__ import annotations

import os

from sqlite_faults import run_rounds


def test_a_writer_killed_at_random_moments_loses_nothing_acknowledged(tmp_path):
    seed = int(os.environ.get("LIVESTACK_FAULT_SEED", "20261205"))
    tally = run_rounds(tmp_path / "faults.db", seed, rounds=12, max_delay=0.8)
    assert not tally.problems, f"{tally}\n" + "\n".join(tally.problems)
    assert tally.rounds == 12 and tally.acked > 0 and tally.completed >= tally.acked
    assert tally.streams >= 2 * (tally.completed + tally.unfinished)
