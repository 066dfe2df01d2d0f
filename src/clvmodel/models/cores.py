"""How many cores this process may use: the ceiling for the threads the fits and forecasts start."""

from __future__ import annotations

import os

__all__ = ["usable_cores"]


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the platform has one (a container
    or ``taskset`` limits it below the machine's count), else the machine's count; at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores)
