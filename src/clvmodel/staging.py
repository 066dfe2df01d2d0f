"""Staging folders beside an output, and the clean-up of those a killed run left behind.

``clvmodel train`` builds a model directory and ``clvmodel score`` its output file in a hidden
folder next to the target (``.NAME.<random>``, same file system, so the result is renamed into
place). A run killed with SIGKILL cannot remove that folder; the next run writing the same target
removes it — but only a folder that is clearly ours and clearly abandoned:

* it matches ``.NAME.*`` beside the target and is a real directory (not a link);
* it holds the marker file :data:`MARKER`, written first thing after the folder is made, naming
  the process that made it;
* that process is gone (or the marker is older than :data:`ABANDONED_AFTER`, in case its id was
  reused), so a concurrent run's folder is left alone.

A folder without the marker (someone's own ``.NAME.backup``) is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["MARKER", "ABANDONED_AFTER", "make_staging", "clean_stale"]

#: Written into every staging folder before anything else; its presence makes the folder ours.
MARKER = ".clvmodel-staging"
#: A marked folder older than this is abandoned even if its process id is in use again.
ABANDONED_AFTER = 24 * 3600.0


def _owner_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _is_stale(folder: Path, now: float) -> bool:
    marker = folder / MARKER
    try:
        if folder.is_symlink() or not folder.is_dir() or marker.is_symlink() or not marker.is_file():
            return False
        age = now - marker.stat().st_mtime
        info = json.loads(marker.read_text(encoding="utf-8")[:1000])
    except (OSError, ValueError):
        return False
    if not isinstance(info, dict) or info.get("by") != "clvmodel":
        return False
    return age > ABANDONED_AFTER or not _owner_alive(info.get("pid"))


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
    for folder in sorted(parent.glob(f".{target.name}.*")):
        if not _is_stale(folder, now):
            continue
        previous = folder / "previous"
        if not os.path.lexists(target) and previous.is_dir() and not previous.is_symlink():
            previous.rename(target)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def make_staging(target: str | Path) -> Path:
    """A new marked staging folder beside ``target`` (after removing abandoned ones)."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    clean_stale(target)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    info = {"by": "clvmodel", "pid": os.getpid(), "target": target.name, "created": time.time()}
    (folder / MARKER).write_text(json.dumps(info), encoding="utf-8")
    return folder
