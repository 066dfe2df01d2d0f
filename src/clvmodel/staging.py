"""Staging folders beside an output, and the clean-up of those a killed run left behind.

``clvmodel train`` builds a model directory and ``clvmodel score`` its output file in a hidden
folder next to the target (``.NAME.clvmodel-<pid>-<random>``, same file system, so the result is renamed into
place). A run killed with SIGKILL cannot remove that folder; the next run writing the same target
removes it — but only a folder that is clearly ours and clearly abandoned:

* its name is ``.NAME.clvmodel-<pid>-<random>`` beside the target, and it is a real directory (not
  a link). The name is the marker: it exists from the instant the folder does (a marker *file*
  written after ``mkdtemp`` leaves a window in which a kill makes an unmarked folder);
* the process ``<pid>`` is gone (or the folder is older than :data:`ABANDONED_AFTER`, in case its
  id was reused), so a concurrent run's folder is left alone.

A folder named otherwise (someone's own ``.NAME.backup``) is never touched.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["ABANDONED_AFTER", "make_staging", "clean_stale"]

#: A staging folder older than this is abandoned even if its process id is in use again.
ABANDONED_AFTER = 24 * 3600.0


def _prefix(target: Path) -> str:
    return f".{target.name}.clvmodel-"


def _owner_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _is_stale(folder: Path, prefix: str, now: float) -> bool:
    pid, dash, rest = folder.name.removeprefix(prefix).partition("-")
    if not (dash and rest and pid.isdigit() and int(pid) > 0):
        return False
    try:
        if folder.is_symlink() or not folder.is_dir():
            return False
        age = now - folder.stat().st_mtime
    except OSError:
        return False
    return age > ABANDONED_AFTER or not _owner_alive(int(pid))


def clean_stale(target: str | Path) -> list[Path]:
    """Remove the abandoned staging folders of ``target``; return what was removed.

    When the target itself is missing and an abandoned folder holds ``previous`` (a model moved
    aside by :func:`clvmodel.modeldir.replace_dir` on a system without an atomic exchange, and
    then killed), that previous model is put back first instead of being deleted.
    """
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        return []
    removed = []
    now = time.time()
    prefix = _prefix(target)
    for folder in sorted(parent.glob(f"{glob.escape(prefix)}*")):
        if not _is_stale(folder, prefix, now):
            continue
        previous = folder / "previous"
        if not os.path.lexists(target) and previous.is_dir() and not previous.is_symlink():
            previous.rename(target)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def make_staging(target: str | Path) -> Path:
    """A new staging folder, named as ours, beside ``target`` (after removing abandoned ones)."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    clean_stale(target)
    return Path(tempfile.mkdtemp(prefix=f"{_prefix(target)}{os.getpid()}-", dir=parent))
