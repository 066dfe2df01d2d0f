"""The data sets shipped inside the lifetimes wheel, located as files (``bundled:<name>``).

``import lifetimes.datasets`` fails (it needs ``pkg_resources``) and importing lifetimes at all
changes the warning filters, so its data folder is found from the package's import spec, which
locates the package without running it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from clvmodel.errors import ClvError

__all__ = ["DATASETS", "dataset_folder", "dataset_path"]

#: Files configs may name as ``bundled:<stem>``: the CDNOW transaction logs, lifetimes' CDNOW
#: summary and the donations summary of Fader, Hardie & Shang (2010).
DATASETS = ("CDNOW_sample", "CDNOW_master", "cdnow_customers_summary", "donations")


def dataset_folder() -> Path:
    """The ``datasets`` folder of the installed lifetimes."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise ClvError("the bundled data sets come with lifetimes, which is not installed; reinstall clvmodel")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets"


def dataset_path(name: str) -> Path:
    """Path of a data file bundled with lifetimes (``CDNOW_sample`` -> ``.../CDNOW_sample.txt``)."""
    if name not in DATASETS:
        raise ClvError(f"unknown bundled data set {name!r}; choose one of: {', '.join(DATASETS)}")
    folder = dataset_folder()
    for suffix in (".txt", ".csv"):
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    raise ClvError(f"bundled data set {name!r} is missing from the installed lifetimes; reinstall lifetimes==0.11.3")
