"""A model directory's ``MLmodel`` file, read one way: bounded, and with one rule for the data path.

Both :func:`clvmodel.artifact.load` (``clvmodel score``) and :func:`clvmodel.modeldir.verify`
(``clvmodel serve``, ``clvmodel train`` before it replaces a folder) find the JSON document
through the ``MLmodel`` file. It may come from anyone, so it is parsed with clvmodel's one
bounded YAML reader (:func:`clvmodel.config.parse_yaml`: no aliases, at most 20 levels, no
duplicate keys) within :data:`MAX_BYTES`, and every value echoed in a message is an excerpt
(:func:`clvmodel.config.excerpt`).
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path
from typing import Any

import yaml

from clvmodel.config import excerpt, parse_yaml
from clvmodel.errors import ClvError

__all__ = ["NAME", "MAX_BYTES", "read", "parse", "python_function", "data_path"]

NAME = "MLmodel"
#: MLflow writes about 1 KB (3 KB with a signature); anything far larger is not one.
MAX_BYTES = 64 * 1024


def read(directory: Path, origin: str) -> bytes | None:
    """The bytes of ``directory/MLmodel`` (``None`` when there is none), read within :data:`MAX_BYTES`.

    A symbolic link or anything but a regular file is refused before it is opened; one byte past
    the limit is read, never the whole file.
    """
    path = directory / NAME
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(mode):
        raise ClvError(f"{origin}: {NAME} is not a regular file; a model directory holds only plain files")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        return handle.read(MAX_BYTES + 1)


def parse(raw: bytes, origin: str) -> Any:
    """The parsed ``MLmodel``, or :class:`ClvError` (too large, not UTF-8, not YAML, an alias, too deep)."""
    if len(raw) > MAX_BYTES:
        raise ClvError(f"{origin}: {NAME} is more than {MAX_BYTES:,} bytes, far more than clvmodel writes; refusing it")
    try:
        return parse_yaml(raw.decode("utf-8"), f"{origin}/{NAME}")
    except ClvError as err:  # an alias, nesting too deep, a duplicate key: the reader's own line
        raise ClvError(str(err).replace(f"{origin}/{NAME}: ", f"{origin}: {NAME} ", 1)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ClvError(f"{origin}: {NAME} is not valid YAML ({type(err).__name__}); refusing it") from None


def python_function(spec: Any, origin: str) -> dict[str, Any]:
    """The ``python_function`` flavor's mapping, or :class:`ClvError`."""
    flavors = spec.get("flavors") if isinstance(spec, dict) else None
    conf = flavors.get("python_function") if isinstance(flavors, dict) else None
    if not isinstance(conf, dict):
        raise ClvError(f"{origin}: {NAME} has no python_function flavor; pass a directory written by clvmodel train")
    return conf


def data_path(conf: dict[str, Any], origin: str) -> str:
    """The flavor's ``data`` as a normalised POSIX path inside the model directory, or :class:`ClvError`."""
    data = conf.get("data")
    normal = posixpath.normpath(data) if isinstance(data, str) else ""
    if not normal or normal.startswith(("/", "../")) or normal in {".", ".."} or "\\" in normal:
        raise ClvError(f"{origin}: {NAME}'s data path {excerpt(data)} is not inside the model directory; refusing it")
    return normal
