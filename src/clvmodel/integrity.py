"""What every saved document carries: the versions it was made with and a checksum of itself."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable
from importlib import metadata
from typing import Any

__all__ = ["package_versions", "document_checksum"]


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
