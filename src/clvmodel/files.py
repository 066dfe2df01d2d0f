"""Writing a file whole or not at all: the one atomic write of the package.

Every file clvmodel writes for a user or into a model directory — tables, figures, the model
document, the challenger's files, a streamed score — goes through :func:`write_atomically`: the
content is written to a temporary file in a marked staging folder beside the target
(:mod:`clvmodel.staging`, same file system) and renamed over the target in one ``os.replace``.
A reader sees the old file or the new one, never half of one; a failure leaves the old file as it
was; a run killed mid-write leaves a staging folder that the next write of the same target
removes (a bare ``mkstemp`` file would stay forever).

No ``fsync``: none of the four writes this one replaced synced, and the promise is atomicity
against a failure of the process (an exception, a kill), not durability across a power cut.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from clvmodel.staging import make_staging, release

__all__ = ["write_atomically"]


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then rename it to ``path`` in one step.

    Parameters
    ----------
    path
        The target; its folder is created when missing.
    write
        Writes the whole content to the path it is given (a file named as the target, in a staging
        folder beside it). What it returns is ignored; what it raises is raised, and the target is
        then left untouched.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        The folder or the file cannot be written (no space, no permission); the caller names what
        it was writing in its own message.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = make_staging(path)
    try:
        tmp = work / path.name
        write(tmp)
        os.replace(tmp, path)
    finally:
        release(work)  # removes the folder (and a temporary file left by a failed write) and its lock
    return path
