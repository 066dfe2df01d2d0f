"""The one exception type for a user's mistake.

The CLI turns a :class:`ClvError` into a single line on stderr and exit code 2; anything else is a
bug in clvmodel and keeps its traceback. Messages name the problem (column, count, example) and a
fix, e.g. ``"column 'amount' not found in sales.csv (columns: id, day, value); set
data.columns.amount"``.
"""

from __future__ import annotations

__all__ = ["ClvError", "ConvergenceFailure"]


class ClvError(Exception):
    """A problem with the user's input, config or model directory (exit code 2)."""


class ConvergenceFailure(ClvError):
    """A model's optimiser did not converge; the message carries the optimiser's own words."""
