"""clvmodel: predictive customer lifetime value from a transaction log.

Public entry points are imported lazily so that ``import clvmodel`` stays cheap (no mlflow, no
lifetimes) and free of side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "ClvError"]

from pathlib import Path

from clvmodel.errors import ClvError

if TYPE_CHECKING:  # pragma: no cover
    from clvmodel.artifact import TrainedModel


def load_model(path_or_uri: str | Path) -> "TrainedModel":
    """Load a trained model from a directory or an MLflow ``models:/``/``runs:/`` URI.

    A URI is downloaded by :func:`clvmodel.integrations.mlflow_tracking.download_model` (mlflow is
    imported only then);
    the directory is read by :func:`clvmodel.artifact.load`.
    """
    from clvmodel.artifact import load

    text = str(path_or_uri)
    if text.startswith(("models:/", "runs:/")):
        from clvmodel.integrations.mlflow_tracking import download_model

        return load(download_model(text), origin=text)
    return load(path_or_uri)


def __getattr__(name: str) -> Any:  # PEP 562: `clvmodel.predict` etc. without eager imports
    import importlib

    if name in {"predict", "rfm", "train", "budget", "config", "io", "clv", "evaluate", "acquisition"}:
        return importlib.import_module(f"clvmodel.{name}")
    raise AttributeError(name)
