"""clvmodel: predictive customer lifetime value from a transaction log.

Public entry points are imported lazily so that ``import clvmodel`` stays cheap (no mlflow, no
lifetimes) and free of side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "ClvError"]

from clvmodel.errors import ClvError

if TYPE_CHECKING:  # pragma: no cover
    from clvmodel.artifact import TrainedModel


def load_model(path_or_uri: str) -> "TrainedModel":
    """Load a trained model from a directory or an MLflow URI; see :func:`clvmodel.artifact.load`."""
    from clvmodel.artifact import load

    return load(path_or_uri)


def __getattr__(name: str) -> Any:  # PEP 562: `clvmodel.predict` etc. without eager imports
    import importlib

    if name in {"predict", "rfm", "train", "budget", "config", "io", "clv", "evaluate"}:
        return importlib.import_module(f"clvmodel.{name}")
    raise AttributeError(name)
