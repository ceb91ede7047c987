"""A spec that dead-letters, for worker processes (``livestack-nb worker dead_letter_specs:NAME``)."""

from __future__ import annotations

import livestack_nb as ls


@ls.job_spec(on_error="dead_letter")
def parse_int(line: str) -> int:
    """Lines to ints; a line that is not one goes to the errors stream."""
    return int(line)
