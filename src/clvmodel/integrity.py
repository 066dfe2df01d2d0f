"""What every saved document carries (versions, a checksum of itself) and a model directory's manifest.

Both are plain SHA-256: they detect corruption (a truncated copy, a flipped bit, a file added or
edited by mistake), not tampering — whoever can edit a file can recompute its checksum. What makes
a hostile model directory harmless is the validation of its content (:mod:`clvmodel.modeldir`),
not these digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from clvmodel.config import cut, excerpt
from clvmodel.document import check_depth, parse_json
from clvmodel.errors import ClvError

__all__ = ["package_versions", "document_checksum", "DocumentKind", "check_document", "MANIFEST_NAME",
           "MANIFEST_FORMAT", "digest", "read_tree", "write_manifest", "check_manifest", "check_listing", "scan_tree"]

#: The list of every file of a model directory with its SHA-256, written last by ``train``.
MANIFEST_NAME = "clvmodel.manifest.json"
MANIFEST_FORMAT = "clvmodel/manifest"
#: A model directory is a few KB (plus the challenger's skops file); anything far larger is not one.
MAX_TREE_BYTES = 256 * 1024 * 1024
MAX_TREE_FILES = 200


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Python's, clvmodel's and each installed package's version (missing ones are left out)."""
    from clvmodel import __version__

    versions = {"python": platform.python_version(), "clvmodel": __version__}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def document_checksum(document: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the document without its ``checksum`` key, as canonical JSON.

    Canonical: sorted keys, no spaces, ASCII, no NaN; any edit to any value changes it.
    """
    body = {k: v for k, v in document.items() if k != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class DocumentKind:
    """A kind of saved document (the trained model's, the challenger's) and how its refusals read.

    The messages are :meth:`str.format` templates over ``origin``, ``format``, ``version`` (the
    document's ``format_version``, any value), ``max_version``, ``written_by`` (the clvmodel version
    the document names) and ``installed`` (this clvmodel's).
    """

    format: str
    version: int
    fix: str  #: the advice after a document nested too deep
    not_ours: str
    too_new: str
    mismatch: str


def check_document(document: Any, kind: DocumentKind, origin: str) -> dict[str, Any]:
    """Check what every saved document carries: its format, a version this clvmodel reads, its checksum.

    In that order, each before anything else of the document is used: the nesting depth before
    hashing (the checksum walks the whole document), the format before the version (a document of
    another kind is named as such), the checksum last. A value JSON cannot hold (NaN, an object)
    makes a mismatch: it is not what was saved. The checksum detects corruption, not tampering;
    the caller validates every field next.

    Returns
    -------
    dict
        ``document``, checked.

    Raises
    ------
    ClvError
        One line, from ``kind``'s templates.
    """
    from clvmodel import __version__

    if isinstance(document, dict):
        check_depth(document, origin, kind.fix)
    if not isinstance(document, dict) or document.get("format") != kind.format:
        raise ClvError(kind.not_ours.format(origin=origin, format=kind.format))
    version = document.get("format_version")
    if not isinstance(version, int) or version > kind.version:
        written_by = (document.get("versions") or {}).get("clvmodel", "?")
        raise ClvError(kind.too_new.format(origin=origin, version=version, max_version=kind.version,
                                           written_by=written_by, installed=__version__))
    try:
        intact = document.get("checksum") == document_checksum(document)
    except (TypeError, ValueError):
        intact = False
    if not intact:
        raise ClvError(kind.mismatch.format(origin=origin))
    return document


def digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def scan_tree(directory: Path, origin: str) -> dict[str, int]:
    """The size of every file under ``directory`` by POSIX path relative to it, from ``lstat`` only.

    Nothing is opened: a symbolic link anywhere (a link can point out of the folder, or be swapped
    after a check), anything that is not a regular file or folder (a FIFO would block a read),
    more than :data:`MAX_TREE_FILES` files or :data:`MAX_TREE_BYTES` bytes in all is refused
    (:class:`ClvError`) before any content is read.
    """
    sizes: dict[str, int] = {}
    total = 0
    pending = [directory]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = Path(entry.path)
                relative = path.relative_to(directory).as_posix()
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    raise ClvError(f"{origin}: {cut(relative, 200)} is a symbolic link; a model directory holds "
                                   "only plain files")
                if stat.S_ISDIR(info.st_mode):
                    pending.append(path)
                    continue
                if not stat.S_ISREG(info.st_mode):
                    raise ClvError(f"{origin}: {cut(relative, 200)} is not a regular file; a model directory holds "
                                   "only plain files")
                if len(sizes) >= MAX_TREE_FILES:
                    raise ClvError(f"{origin} holds more than {MAX_TREE_FILES} files; it is not a clvmodel model directory")
                total += info.st_size
                if total > MAX_TREE_BYTES:
                    raise ClvError(f"{origin} holds more than {MAX_TREE_BYTES // 2**20} MB; it is not a clvmodel model directory")
                sizes[relative] = info.st_size
    return sizes


def read_tree(directory: Path, origin: str) -> dict[str, bytes]:
    """Every file under ``directory`` as bytes, by POSIX path relative to it.

    The tree is first checked by :func:`scan_tree` (links, special files, count and sizes, from
    ``lstat`` alone); then each file is read, within the same total (a file grown since the scan
    is cut off and refused). The bytes returned are the ones checked and then used: nothing is
    read twice from disk.
    """
    files: dict[str, bytes] = {}
    total = 0
    for relative in scan_tree(directory, origin):
        # O_NOFOLLOW: a file swapped for a link between the scan and the read is refused too.
        try:
            fd = os.open(directory / relative, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as err:
            raise ClvError(f"{origin}: cannot read {excerpt(relative, 200)} ({err.strerror or err}); "
                           "it changed while being checked") from None
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_TREE_BYTES - total + 1)
        total += len(data)
        if total > MAX_TREE_BYTES:
            raise ClvError(f"{origin} holds more than {MAX_TREE_BYTES // 2**20} MB; it is not a clvmodel model directory")
        files[relative] = data
    return files


def write_manifest(directory: Path) -> Path:
    """Write :data:`MANIFEST_NAME` listing every other file of ``directory`` with its SHA-256."""
    files = read_tree(directory, str(directory))
    files.pop(MANIFEST_NAME, None)
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": 1,
        "algorithm": "sha256",
        "files": {name: digest(data) for name, data in sorted(files.items())},
    }
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def check_listing(raw: bytes, names: Iterable[str], origin: str) -> dict[str, str]:
    """The manifest ``raw`` parsed (bounded: :func:`clvmodel.document.parse_json`) and checked to list
    exactly ``names`` (the directory's files but the manifest); its ``{name: digest}``.

    Needs the file names only, not their contents: :func:`clvmodel.modeldir.check_replaceable`
    refuses a folder holding a user's file before reading anything but ``MLmodel`` and this.
    """
    try:
        manifest = parse_json(raw, f"{origin}/{MANIFEST_NAME}", "retrain the model")
    except ClvError:
        manifest = None
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    ok = (isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT
          and manifest.get("format_version") == 1 and isinstance(listed, dict)
          and all(isinstance(value, str) for value in listed.values()))
    if not ok:
        raise ClvError(f"{origin}: {MANIFEST_NAME} is not a clvmodel manifest; retrain the model")
    present = set(names) - {MANIFEST_NAME}
    for name in sorted(present - set(listed)):
        raise ClvError(f"{origin}: file {excerpt(name, 200)} is not in its manifest (added after training); remove it or retrain")
    for name in sorted(set(listed) - present):
        raise ClvError(f"{origin}: file {excerpt(name, 200)} listed in its manifest is missing; copy the whole model directory")
    return listed


def check_manifest(files: dict[str, bytes], origin: str) -> None:
    """Check ``files`` (from :func:`read_tree`) against their manifest: same set, same digests.

    Raises
    ------
    ClvError
        No manifest, an unreadable one, a listed file missing, an unlisted file present, or a
        digest that differs; the message names the first such file.
    """
    raw = files.get(MANIFEST_NAME)
    if raw is None:
        raise ClvError(f"{origin} has no {MANIFEST_NAME} listing its files and checksums (older clvmodel); retrain the model")
    listed = check_listing(raw, files, origin)
    for name in sorted(set(files) - {MANIFEST_NAME}):
        if listed[name] != digest(files[name]):
            raise ClvError(f"{origin}: file {excerpt(name, 200)} does not match its SHA-256 in the manifest (edited or "
                           "corrupted); retrain or restore the model")
