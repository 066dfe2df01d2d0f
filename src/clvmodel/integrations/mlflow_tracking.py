"""MLflow's low side, the one module that imports mlflow: the run logger, fetching a logged model
by URI, and writing a trained model as an MLflow model directory.

Low in the flow: the pipelines (:mod:`clvmodel.train`, :mod:`clvmodel.subscription`) and the
budget command log through it and save with :func:`save_model_dir`, and
:func:`clvmodel.load_model` fetches ``models:/``/``runs:/`` URIs with :func:`download_model`. The
pyfunc loader that scores a saved model is :mod:`clvmodel.tracking` (high: it calls the scorers).

The model directory is an MLflow model in the ``loader_module`` form: its ``MLmodel`` names
:mod:`clvmodel.tracking` (the installed pyfunc loader, :data:`clvmodel.modeldir.LOADER_MODULE`)
and the JSON document as data. Loading it with ``mlflow.pyfunc.load_model`` or serving it with
``mlflow models serve`` therefore runs only installed code and reads only JSON — no pickle, no
code copied into the model directory — *as long as the directory is one clvmodel wrote*: MLflow
imports whatever ``loader_module`` and ``code`` an ``MLmodel`` names, so on a directory from
someone else use ``clvmodel serve`` (:mod:`clvmodel.serve`), which verifies every file first
(:mod:`clvmodel.modeldir`). This module imports the artifact and the directory checks, never the
scorers (the loader it names is imported by MLflow at load time, not here).

Tracking URI: ``MLFLOW_TRACKING_URI`` when set, else MLflow's default (``sqlite:///mlflow.db`` in
the working directory, MLflow 3).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

from clvmodel import modeldir
from clvmodel.artifact import CHALLENGER_DIR, JSON_NAME, TrainedModel, package_versions
from clvmodel.errors import ClvError
from clvmodel.integrity import write_manifest
from clvmodel.staging import make_staging

__all__ = ["run", "log_params", "log_metrics", "log_figure", "log_table", "log_text", "log_artifact", "log_model",
           "download_model", "save_model_dir"]


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
    """Log a table as a CSV artifact; ``name`` may name a folder of the run's artifacts (``channels/x.csv``)."""
    folder, _, file = name.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=folder or None)


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


# --- the model directory ---------------------------------------------------------------------

#: A trained model's pyfunc inputs (RFM rows) in the model's time unit.
_INPUT = Schema(
    [
        ColSpec("string", "customer_id"),
        ColSpec("double", "frequency"),
        ColSpec("double", "recency"),
        ColSpec("double", "T"),
        ColSpec("double", "monetary_value", required=False),
    ]
)


_SUBSCRIBERS = Schema([ColSpec("string", "customer_id"), ColSpec("double", "renewals")])


def _signature(model: TrainedModel) -> ModelSignature:
    clv = model.clv
    if model.subscription:
        params = ParamSchema([ParamSpec("discount_rate", "double", float(clv["discount_rate"])),
                              ParamSpec("margin", "double", float(clv["margin"]))])
        return ModelSignature(inputs=_SUBSCRIBERS, params=params)
    params = ParamSchema(
        [
            ParamSpec("horizon", "long", int(clv["horizon"])),
            ParamSpec("discount_rate", "double", float(clv["discount_rate"])),
            ParamSpec("margin", "double", float(clv["margin"])),
        ]
    )
    return ModelSignature(inputs=_INPUT, params=params)


def _example(model: TrainedModel) -> pd.DataFrame:
    if model.subscription:
        return pd.DataFrame({"customer_id": ["example"], "renewals": [2.0]})
    return pd.DataFrame(
        {"customer_id": ["example"], "frequency": [2.0], "recency": [30.0], "T": [38.0], "monetary_value": [25.0]}
    )


def _requirements() -> list[str]:
    versions = package_versions()
    return [f"clvmodel=={versions['clvmodel']}"] + [
        f"{name}=={versions[name]}" for name in ("lifetimes", "mlflow", "pandas", "numpy", "scipy") if name in versions
    ]


def save_model_dir(model: TrainedModel, directory: str | Path, extra_files: dict[str, bytes] | None = None) -> Path:
    """Write ``model`` as an MLflow model directory at ``directory``, replacing a previous model whole.

    The directory is built in a marked staging folder beside the target (abandoned ones, from a
    killed run, are removed first: :mod:`clvmodel.staging`), listed with the SHA-256 of every file
    in ``clvmodel.manifest.json``, verified as ``clvmodel serve`` would, and swapped into place
    (:func:`clvmodel.modeldir.replace_dir`: atomic on Linux). A failure leaves the previous model
    intact. ``extra_files`` (name -> bytes, e.g. ``report.html``) are written at the directory's top
    before the manifest, so the manifest lists them too.

    Raises
    ------
    ClvError
        ``directory`` exists and is neither empty nor a model directory clvmodel wrote (it is not
        touched), or it cannot be written.
    """
    directory = Path(directory)
    modeldir.check_replaceable(directory)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = make_staging(directory)
    except OSError as err:
        raise ClvError(f"cannot write model directory {directory}: {err.strerror or err}") from None
    try:
        new = staging / "model"
        json_path = model.write_json(staging / "src" / JSON_NAME)
        mlflow.pyfunc.save_model(
            path=str(new),
            loader_module=modeldir.LOADER_MODULE,
            data_path=str(json_path),
            signature=_signature(model),
            # A made-up customer, not training data: the model keeps no customer rows.
            input_example=_example(model),
            pip_requirements=_requirements(),
        )
        if model.challenger is not None:
            model.challenger.save(new / CHALLENGER_DIR)
        for name, data in (extra_files or {}).items():
            if "/" in name or name in {"", ".", ".."} or (new / name).exists():
                raise ClvError(f"cannot add {name!r} to the model directory: not a new top-level file name")
            (new / name).write_bytes(data)
        write_manifest(new)  # last: it lists every file above
        modeldir.verify(new)  # what `clvmodel serve` will require, checked before it replaces anything
        modeldir.check_replaceable(directory)  # again: the folder may have changed while we fitted
        modeldir.replace_dir(new, directory, staging)
    except OSError as err:
        raise ClvError(f"cannot write model directory {directory}: {err.strerror or err}") from None
    finally:
        if os.path.lexists(directory) or not os.path.lexists(staging / "previous"):
            modeldir.remove_staging(staging)
        # else: the previous model could not be put back; the folder is left (its lock released at
        # exit) for the next run's clvmodel.staging.clean_stale, which restores it, never deletes it.
    return directory
