"""Staging folders beside an output, and the clean-up of those a killed run left behind.

``clvmodel train`` builds a model directory, ``clvmodel score`` its output file and every atomic
write (:func:`clvmodel.io.write_table`, a figure) its temporary file in a hidden folder next to the
target (``.NAME.clvmodel-<pid>-<random>``, made by :func:`tempfile.mkdtemp`, same file system, so
the result is renamed into place). A run killed with SIGKILL cannot remove that folder; the next
run writing the same target removes it — but only a folder that is clearly ours and clearly
abandoned:

* its name is exactly ``.NAME.clvmodel-<digits>-<8 characters of mkdtemp's alphabet>`` beside the
  target (:func:`_pattern`), and it is a real directory (not a link): someone's own
  ``.NAME.backup`` or ``.NAME.clvmodel-2024-backup`` is never touched;
* it holds only what clvmodel puts there (:data:`_CONTENTS`, plus a file named as the target);
* its lock is free: the run that made it holds an exclusive ``flock`` on its :data:`LOCK_NAME`
  for as long as it lives (the kernel releases it when the process ends, however it ends). A lock
  needs no process id, so it holds across PID namespaces (containers) and for a run of any length.
  A folder killed between ``mkdtemp`` and the lock's creation has no lock file: it is abandoned
  once it is empty and older than :data:`UNLOCKED_GRACE`.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

__all__ = ["LOCK_NAME", "UNLOCKED_GRACE", "make_staging", "clean_stale", "release"]

#: The file inside a staging folder whose lock its run holds while it lives.
LOCK_NAME = "clvmodel.lock"
#: A folder without a lock file (a run killed within microseconds of making it) is abandoned after this.
UNLOCKED_GRACE = 60.0
#: Everything clvmodel writes into a staging folder (train: src, model, previous; score: scored;
#: an atomic write, :mod:`clvmodel.files`: a file named as the target). ``final.*`` is what a
#: streamed score wrote before its output went through that atomic write: still recognised, so a
#: folder left by an older run is still cleaned.
_CONTENTS = {LOCK_NAME, "src", "model", "previous", "scored.parquet", "final.csv", "final.parquet", "final.pq"}
#: The locks this process holds, by folder (released by :func:`release` or at exit).
_HELD: dict[Path, int] = {}


def _prefix(target: Path) -> str:
    return f".{target.name}.clvmodel-"


def _pattern(target: Path) -> re.Pattern[str]:
    """A staging folder's exact name: mkdtemp's suffix is 8 of ``[a-z0-9_]`` (tempfile._RandomNameSequence)."""
    return re.compile(rf"{re.escape(_prefix(target))}\d+-[a-z0-9_]{{8}}")


def _lock_free(lock: Path) -> bool:
    """True when nobody holds ``lock`` (its run is gone); False when held or not a plain file."""
    try:
        fd = os.open(lock, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: a live run
            return False
        return True  # closing the descriptor below releases it again
    finally:
        os.close(fd)


def _is_stale(folder: Path, target: Path, now: float) -> bool:
    if not _pattern(target).fullmatch(folder.name) or folder in _HELD:
        return False
    try:
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode):
            return False
        names = {entry.name for entry in os.scandir(folder)}
    except OSError:
        return False
    if not names <= _CONTENTS | {target.name}:
        return False
    if LOCK_NAME not in names:
        return not names and now - info.st_mtime > UNLOCKED_GRACE
    return _lock_free(folder / LOCK_NAME)


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
    for folder in sorted(parent.glob(f"{glob.escape(_prefix(target))}*")):
        if not _is_stale(folder, target, now):
            continue
        previous = folder / "previous"
        if not os.path.lexists(target) and previous.is_dir() and not previous.is_symlink():
            previous.rename(target)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def make_staging(target: str | Path) -> Path:
    """A new staging folder, named as ours and locked while this process lives, beside ``target``.

    Abandoned folders of the same target are removed first (:func:`clean_stale`).
    """
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    clean_stale(target)
    folder = Path(tempfile.mkdtemp(prefix=f"{_prefix(target)}{os.getpid()}-", dir=parent))
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _HELD[folder] = fd
    return folder


def release(folder: Path) -> None:
    """Remove ``folder`` (made by :func:`make_staging`) and release its lock."""
    shutil.rmtree(folder, ignore_errors=True)
    fd = _HELD.pop(Path(folder), None)
    if fd is not None:
        os.close(fd)
