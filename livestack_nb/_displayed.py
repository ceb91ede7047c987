"""What a kernel shows as live widgets, by name: shared by the hooks and the widgets.

A leaf module: :mod:`livestack_nb._kernel` registers these names with IPython
(importing the widgets only on first display), and the widgets read them
here, so neither side imports the other to know them.
"""

from __future__ import annotations

__all__ = ["DISPLAYED", "KITCHEN_TARGET"]

#: The classes a kernel displays as live widgets, by module and name.
DISPLAYED = (
    ("livestack_nb.stream", "DataStream"),
    ("livestack_nb.flow", "Liveflow"),
    ("livestack_nb.attempts", "ParallelAttempts"),
    ("livestack_nb.job", "JobHandle"),
)

#: The comm target the Kitchen side panel opens (``livestack_nb.widgets.kitchen.TARGET``).
KITCHEN_TARGET = "livestack-nb:kitchen"
