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

mlflow is imported by the functions that call it, not by this module (issue 16, "small data"):
``import mlflow`` costs 1.5–2 s, and a ``--no-tracking`` run only writes the model directory,
which :func:`save_model_dir` writes in MLflow's ``loader_module`` format itself (the files
``mlflow.pyfunc.save_model`` writes for this model, byte for byte but the ``MLmodel``'s
``model_uuid`` and ``utc_time_created``: tests/test_tracking.py holds it to
MLflow's own writer). That also skips ``save_model``'s check that the pinned requirements are
installed, which lists every installed distribution's files (about 0.7 s) to confirm versions we
have just read from the same metadata.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import tempfile
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from clvmodel import modeldir
from clvmodel.artifact import CHALLENGER_DIR, JSON_NAME, TrainedModel, package_versions
from clvmodel.errors import ClvError
from clvmodel.integrity import write_manifest
from clvmodel.staging import make_staging

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["run", "log_params", "log_metrics", "log_data", "log_figure", "log_table", "log_text", "log_artifact", "log_model",
           "download_model", "save_model_dir", "write_pyfunc_dir"]


#: ``scheme://user:password@host``: the password of a database tracking URI.
_PASSWORD = re.compile(r"(//[^/:@\s]*):[^/@\s]*@")


def _masked(text: str) -> str:
    """``text`` with any URI's password replaced by ``***`` (the error goes to a terminal and to logs)."""
    return _PASSWORD.sub(r"\1:***@", text)


def _tracking_uri() -> str:
    import mlflow

    try:
        return _masked(str(mlflow.get_tracking_uri()))
    except Exception:  # the URI is only quoted in the message; it must not hide the first error
        return _masked(os.environ.get("MLFLOW_TRACKING_URI", "the default store"))


@contextlib.contextmanager
def run(experiment: str, run_name: str, tags: dict[str, str] | None = None, nested: bool = False) -> Iterator[str]:
    """Start an MLflow run in ``experiment`` and yield its id; the run ends (FAILED on error) on exit.

    Raises
    ------
    ClvError
        The tracking store cannot be opened, the experiment set or the run started (a bad
        ``MLFLOW_TRACKING_URI``, an unwritable store): one line, MLflow's first line quoted. Errors
        while the run logs are MLflow's own, unchanged.
    """
    import mlflow

    try:
        if not nested:
            mlflow.set_experiment(experiment)
        active = mlflow.start_run(run_name=run_name, tags=tags, nested=nested)
    except Exception as err:  # mlflow raises several types (MlflowException, OSError, SQLAlchemy's)
        first = " ".join(str(err).strip().splitlines()[0].split()) if str(err).strip() else type(err).__name__
        raise ClvError(f"cannot log to the MLflow tracking store {_tracking_uri()} (experiment {experiment!r}): "
                       f"{_masked(first)[:300]}; check MLFLOW_TRACKING_URI") from None
    with active:  # ends the run: FINISHED, or FAILED when the body raises
        yield active.info.run_id


def log_params(params: dict[str, Any]) -> None:
    """Log params; values become text (MLflow keeps params as strings), ``None`` as ``null``."""
    import mlflow

    mlflow.log_params({k: ("null" if v is None else str(v)[:6000]) for k, v in params.items()})


def log_metrics(metrics: dict[str, float]) -> None:
    """Log finite numeric metrics (MLflow rejects NaN in some stores; they are skipped, not faked)."""
    clean = {k: float(v) for k, v in metrics.items() if v is not None and pd.notna(v)}
    import mlflow

    mlflow.log_metrics(clean)


def log_data(params: dict[str, Any], metrics: dict[str, float]) -> None:
    """:func:`log_params` and :func:`log_metrics` in one ``log_batch`` call: one store transaction
    instead of two (MLflow splits a batch over its limits itself). Values as those two log them:
    params as text (``null`` for ``None``), finite metrics at step 0, stamped now."""
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.utils.time import get_current_time_millis

    run_id = mlflow.active_run().info.run_id
    now = get_current_time_millis()
    mlflow.MlflowClient().log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0, run_id=run_id) for k, v in metrics.items() if v is not None and pd.notna(v)],
        params=[Param(k, "null" if v is None else str(v)[:6000]) for k, v in params.items()],
    )


def log_figure(figure: Figure, name: str) -> None:
    import mlflow

    mlflow.log_figure(figure, name)


def log_table(frame: pd.DataFrame, name: str) -> None:
    """Log a table as a CSV artifact; ``name`` may name a folder of the run's artifacts (``channels/x.csv``)."""
    import mlflow

    folder, _, file = name.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=folder or None)


def log_artifact(path: str | Path) -> None:
    import mlflow

    mlflow.log_artifact(str(path))


def log_text(text: str, name: str) -> None:
    import mlflow

    mlflow.log_text(text, name)


def log_model(model_dir: str | Path, artifact_path: str = "model") -> str:
    """Log a saved model directory to the active run; return its ``runs:/`` URI."""
    import mlflow

    mlflow.log_artifacts(str(model_dir), artifact_path)
    return f"runs:/{mlflow.active_run().info.run_id}/{artifact_path}"


def download_model(uri: str) -> Path:
    """Download a ``models:/`` or ``runs:/`` model to a local directory."""
    import mlflow

    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as err:  # mlflow raises several types (MlflowException, OSError, ...)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ClvError(f"cannot fetch model {uri}: {first[:200]}; check MLFLOW_TRACKING_URI and the name/version") from None


# --- the model directory ---------------------------------------------------------------------

#: A trained model's pyfunc inputs (RFM rows) in the model's time unit: MLflow's ``ColSpec`` dicts
#: (type, name, required), as ``ModelSignature.to_dict`` writes them.
_INPUT = [
    {"type": "string", "name": "customer_id", "required": True},
    {"type": "double", "name": "frequency", "required": True},
    {"type": "double", "name": "recency", "required": True},
    {"type": "double", "name": "T", "required": True},
    {"type": "double", "name": "monetary_value", "required": False},
]
_SUBSCRIBERS = [{"type": "string", "name": "customer_id", "required": True},
                {"type": "double", "name": "renewals", "required": True}]


def _param(name: str, kind: str, default: float) -> dict[str, Any]:
    """One ``ParamSpec`` as MLflow writes it (a scalar: no shape)."""
    return {"name": name, "default": default, "shape": None, "type": kind}


def _signature(model: TrainedModel) -> dict[str, Any]:
    """The ``signature`` entry of ``MLmodel``: inputs and params as JSON text, no outputs."""
    clv = model.clv
    rate, margin = _param("discount_rate", "double", float(clv["discount_rate"])), _param("margin", "double", float(clv["margin"]))
    if model.subscription:
        inputs, params = _SUBSCRIBERS, [rate, margin]
    else:
        inputs, params = _INPUT, [_param("horizon", "long", int(clv["horizon"])), rate, margin]
    return {"inputs": json.dumps(inputs), "outputs": None, "params": json.dumps(params)}


def _example(model: TrainedModel) -> dict[str, Any]:
    """A made-up customer in pandas' ``split`` orient (the model keeps no customer rows)."""
    if model.subscription:
        return {"columns": ["customer_id", "renewals"], "data": [["example", 2.0]]}
    return {"columns": ["customer_id", "frequency", "recency", "T", "monetary_value"],
            "data": [["example", 2.0, 30.0, 38.0, 25.0]]}


def _requirements() -> list[str]:
    versions = package_versions()
    return [f"clvmodel=={versions['clvmodel']}"] + [
        f"{name}=={versions[name]}" for name in ("lifetimes", "mlflow", "pandas", "numpy", "scipy") if name in versions
    ]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def write_pyfunc_dir(model: TrainedModel, path: Path) -> None:
    """Write ``model`` at ``path`` (a new folder) as ``mlflow.pyfunc.save_model`` would write it.

    The call it stands for: ``save_model(path, loader_module=clvmodel.tracking, data_path=<the JSON
    document>, signature=<_signature>, input_example=<_example>, pip_requirements=<_requirements>)``,
    which writes, in this order: ``data/clvmodel.json``, ``input_example.json`` and
    ``serving_input_example.json``, then ``MLmodel`` (its ``model_size_bytes`` counts the files
    before it), ``conda.yaml``, ``requirements.txt`` and ``python_env.yaml``. MLflow is not
    imported (see the module docstring); its version is read from the installed metadata, as
    the pinned requirements are.
    """
    path.mkdir()
    model.write_json(path / "data" / JSON_NAME)
    example = _example(model)
    (path / "input_example.json").write_text(json.dumps(example), encoding="utf-8")
    (path / "serving_input_example.json").write_text(json.dumps({"dataframe_split": example}, indent=2),
                                                     encoding="utf-8")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    python = platform.python_version()
    mlmodel = {
        "flavors": {
            "python_function": {
                "code": None,
                "data": f"data/{JSON_NAME}",
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": modeldir.LOADER_MODULE,
                "python_version": python,
                "streamable": False,
            }
        },
        "is_signature_from_type_hint": False,
        "mlflow_version": _version("mlflow"),
        "model_id": None,
        "model_size_bytes": size,
        "model_uuid": uuid.uuid4().hex,
        "prompts": None,
        "saved_input_example_info": {"artifact_path": "input_example.json", "pandas_orient": "split",
                                     "serving_input_path": "serving_input_example.json", "type": "dataframe"},
        "signature": _signature(model),
        "type_hint_from_example": False,
        # naive UTC, as MLflow writes it (str of a datetime without tzinfo)
        "utc_time_created": str(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)),
    }
    with open(path / "MLmodel", "w", encoding="utf-8") as handle:
        yaml.safe_dump(mlmodel, handle, default_flow_style=False)
    requirements = _requirements()
    pip = _version("pip")
    conda = {"channels": ["conda-forge"],
             "dependencies": [f"python={python}", f"pip<={pip}" if pip else "pip", {"pip": requirements}],
             "name": "mlflow-env"}
    with open(path / "conda.yaml", "w", encoding="utf-8") as handle:
        yaml.safe_dump(conda, handle, default_flow_style=False)
    (path / "requirements.txt").write_text("\n".join(requirements), encoding="utf-8")
    build = [f"{name}=={version}" if (version := _version(name)) else name for name in ("pip", "setuptools", "wheel")]
    with open(path / "python_env.yaml", "w", encoding="utf-8") as handle:
        yaml.safe_dump({"python": python, "build_dependencies": build, "dependencies": ["-r requirements.txt"]},
                       handle, sort_keys=False, default_flow_style=False)


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
        write_pyfunc_dir(model, new)
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
