"""The MLflow run logger: runs, params, metrics, artifacts, and fetching a logged model by URI.

Low in the flow: the pipelines (:mod:`clvmodel.train`, :mod:`clvmodel.subscription`) and the
budget command log through it, and :func:`clvmodel.load_model` fetches ``models:/``/``runs:/``
URIs with :func:`download_model`. It imports nothing of clvmodel above :mod:`clvmodel.errors`; the
model directory is written by :mod:`clvmodel.integrations.mlflow_model`, and the pyfunc loader
that scores a saved model is :mod:`clvmodel.tracking` (high: it calls the scorers).

Tracking URI: ``MLFLOW_TRACKING_URI`` when set, else MLflow's default (``sqlite:///mlflow.db`` in
the working directory, MLflow 3).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure

from clvmodel.errors import ClvError

__all__ = ["run", "log_params", "log_metrics", "log_figure", "log_table", "log_text", "log_artifact", "log_model",
           "download_model"]


@contextlib.contextmanager
def run(experiment: str, run_name: str, tags: dict[str, str] | None = None, nested: bool = False) -> Iterator[str]:
    """Start an MLflow run in ``experiment`` and yield its id; the run ends (FAILED on error) on exit."""
    if not nested:
        mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name, tags=tags, nested=nested) as active:
        yield active.info.run_id


def log_params(params: dict[str, Any]) -> None:
    """Log params; values become text (MLflow keeps params as strings), ``None`` as ``null``."""
    mlflow.log_params({k: ("null" if v is None else str(v)[:6000]) for k, v in params.items()})


def log_metrics(metrics: dict[str, float]) -> None:
    """Log finite numeric metrics (MLflow rejects NaN in some stores; they are skipped, not faked)."""
    clean = {k: float(v) for k, v in metrics.items() if v is not None and pd.notna(v)}
    mlflow.log_metrics(clean)


def log_figure(figure: Figure, name: str) -> None:
    mlflow.log_figure(figure, name)


def log_table(frame: pd.DataFrame, name: str) -> None:
    """Log a table as a CSV artifact."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path))


def log_artifact(path: str | Path) -> None:
    mlflow.log_artifact(str(path))


def log_text(text: str, name: str) -> None:
    mlflow.log_text(text, name)


def log_model(model_dir: str | Path, artifact_path: str = "model") -> str:
    """Log a saved model directory to the active run; return its ``runs:/`` URI."""
    mlflow.log_artifacts(str(model_dir), artifact_path)
    return f"runs:/{mlflow.active_run().info.run_id}/{artifact_path}"


def download_model(uri: str) -> Path:
    """Download a ``models:/`` or ``runs:/`` model to a local directory."""
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as err:  # mlflow raises several types (MlflowException, OSError, ...)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ClvError(f"cannot fetch model {uri}: {first[:200]}; check MLFLOW_TRACKING_URI and the name/version") from None
