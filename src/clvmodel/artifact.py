"""A trained model as data: one JSON document with a checksum, inside an MLflow model directory.

The document (``clvmodel.json``) holds the model types and their parameters, standard errors,
the time unit, column mapping, CLV settings, the training config, package versions and a SHA-256
checksum of everything else. Three or four numbers per model determine every prediction, so
nothing is pickled and loading executes no code from the model directory: :func:`load` reads
JSON, checks the format version and the checksum, and rebuilds the models from their parameters.

The MLflow side lives elsewhere: the ``MLmodel`` directory is written by
:mod:`clvmodel.integrations.mlflow_tracking`, ``models:/`` URIs are fetched by
:func:`clvmodel.load_model`, and the pyfunc loader is :mod:`clvmodel.tracking`; this module
imports no mlflow and nothing above it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clvmodel import document as schema
from clvmodel import mlmodel
from clvmodel.config import excerpt
from clvmodel.errors import ClvError
from clvmodel.files import write_atomically
from clvmodel.integrity import DocumentKind, check_document, document_checksum
from clvmodel.integrity import package_versions as _versions
from clvmodel.models.channels import AcquisitionState
from clvmodel.models import FittedModel, GammaGammaModel, HistoricalModel, PurchaseModel, registry

__all__ = ["FORMAT", "FORMAT_VERSION", "JSON_NAME", "TrainedModel", "load", "load_document", "package_versions"]

FORMAT = "clvmodel/trained-model"
#: Bump when the document changes incompatibly; a reader refuses versions above its own.
#: 2: ``segment_boundaries`` (a reader of format 1 would refuse it as an unknown key; now it says
#: "upgrade clvmodel"). Format 1 documents still load, without boundaries.
FORMAT_VERSION = 2
JSON_NAME = "clvmodel.json"
CHALLENGER_DIR = "challenger"
_PACKAGES = ("lifetimes", "numpy", "pandas", "scipy", "duckdb", "mlflow", "scikit-learn", "skops")


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a model's numbers depend on."""
    return _versions(_PACKAGES)


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null (e.g. a standard error from a singular Hessian)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


_checksum = document_checksum

#: How a trained model's document is recognised, and refused (:func:`clvmodel.integrity.check_document`).
_KIND = DocumentKind(
    format=FORMAT,
    version=FORMAT_VERSION,
    fix="retrain the model",
    not_ours="{origin} is not a clvmodel model (no '{format}' document); train one with clvmodel train",
    too_new=("{origin} was written by clvmodel {written_by} in model format {version}; this clvmodel {installed} "
             "reads format {max_version} at most: upgrade clvmodel"),
    mismatch="{origin}: checksum mismatch, the model JSON was edited or corrupted; retrain or restore it",
)


def _short(value: Any) -> str:
    """``repr(value)`` cut to 40 characters, for a one-line message."""
    return excerpt(value, 39)  # ``…`` included


@dataclass
class TrainedModel:
    """Fitted models plus what is needed to use them on new customers."""

    name: str
    time_unit: str
    models: dict[str, FittedModel]
    clv: dict[str, Any]
    segments: dict[str, Any]
    columns: dict[str, str]
    config: dict[str, Any] = field(default_factory=dict)
    #: The purchase model behind ``predicted_clv`` (``None``: historical only) and why it was chosen.
    primary: str | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    calibration_end: str | None = None
    observation_end: str | None = None
    #: The scikit-learn challenger (:class:`clvmodel.models.challenger.Challenger`), saved beside
    #: the JSON in ``challenger/`` (skops format, its own checksum); ``None`` when not trained.
    challenger: Any = None
    #: Per-channel pieces of a new customer's value (:class:`clvmodel.models.channels.AcquisitionState`),
    #: when trained with a customer table (``customers:``); ``None`` otherwise.
    acquisition: AcquisitionState | None = None
    #: Segment boundaries fixed at training (:func:`clvmodel.segments.fit_boundaries`): per basis
    #: (``predicted_clv``, ``expected_purchases``) the lowest value of the ``vip``, ``high`` and
    #: ``medium`` tiers. ``None`` in documents written before them: segments are then ranked
    #: within each scored batch, the rule those models were trained with.
    segment_boundaries: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=package_versions)
    created: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    def of_role(self, role: str) -> dict[str, Any]:
        """The fitted models of one registry role (:data:`clvmodel.models.registry.ROLES`), in order."""
        return {k: v for k, v in self.models.items() if registry.family(k).role == role}

    @property
    def purchase_model(self) -> PurchaseModel | None:
        """The purchase model behind ``predicted_clv`` (``primary``); ``None`` without one."""
        return self.models.get(self.primary) if self.primary else None  # type: ignore[return-value]

    @property
    def purchase_models(self) -> dict[str, PurchaseModel]:
        return self.of_role("purchase")

    @property
    def spend_model(self) -> GammaGammaModel | None:
        return next(iter(self.of_role("spend").values()), None)

    @property
    def historical_model(self) -> HistoricalModel | None:
        return next(iter(self.of_role("baseline").values()), None)

    @property
    def retention_model(self) -> Any:
        """The subscription (contractual) model, when this is a subscription model."""
        return next(iter(self.of_role("retention").values()), None)

    @property
    def subscription(self) -> bool:
        """Whether this model scores subscribers (renewals) rather than RFM rows."""
        return self.retention_model is not None

    def to_document(self) -> dict[str, Any]:
        """The JSON document, checksum included."""
        document = _finite(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "name": self.name,
                "created": self.created,
                "time_unit": self.time_unit,
                "calibration_end": self.calibration_end,
                "observation_end": self.observation_end,
                "columns": dict(self.columns),
                "clv": dict(self.clv),
                "segments": dict(self.segments),
                # Left out when absent, so a model without boundaries keeps the document it had.
                **({"segment_boundaries": self.segment_boundaries} if self.segment_boundaries is not None else {}),
                "models": {name: model.to_dict() for name, model in self.models.items()},
                "primary": self.primary,
                "selection": self.selection,
                "challenger": {"path": CHALLENGER_DIR} if self.challenger is not None else None,
                "acquisition": self.acquisition.to_dict() if self.acquisition is not None else None,
                "config": self.config,
                "versions": self.versions,
            }
        )
        document["checksum"] = _checksum(document)
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any], origin: str = "model") -> "TrainedModel":
        """Verify format, version, checksum and schema, then rebuild the models from their parameters.

        The schema (:mod:`clvmodel.document`) is checked before any field is used: the checksum
        is a plain SHA-256 that whoever edits the document can recompute.

        Raises
        ------
        ClvError
            One line: not a model document, a newer format, a checksum mismatch, or a field
            that breaks the schema (its dotted name and, cut short, its value).
        """
        check_document(document, _KIND, origin)
        states = document.get("models")
        for name in states if isinstance(states, dict) else ():
            if name not in registry.names():
                raise ClvError(f"{origin}: unknown model type {_short(name)}; upgrade clvmodel")
        schema.validate(document, origin)
        try:
            models = {}
            if document.get("primary") is not None and document["primary"] not in document["models"]:
                raise ClvError(f"{origin}: primary model {document['primary']!r} is not among its models; retrain it")
            for name, state in document["models"].items():
                models[name] = registry.family_class(name).from_dict(state)
            return cls(
                name=document["name"],
                time_unit=document["time_unit"],
                models=models,
                clv=document["clv"],
                segments=document["segments"],
                columns=document["columns"],
                config=document.get("config") or {},
                primary=document.get("primary"),
                selection=document.get("selection") or {},
                calibration_end=document.get("calibration_end"),
                observation_end=document.get("observation_end"),
                versions=document.get("versions") or {},
                acquisition=(
                    AcquisitionState.from_dict(document["acquisition"]) if document.get("acquisition") is not None else None
                ),
                created=document.get("created") or "",
                segment_boundaries=document.get("segment_boundaries"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ClvError(f"{origin}: malformed model document ({type(err).__name__}: {err}); retrain the model") from None

    def write_json(self, path: str | Path) -> Path:
        """Write the document atomically (:func:`clvmodel.files.write_atomically`)."""
        document = self.to_document()

        def dump(tmp: Path) -> None:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2, sort_keys=True, allow_nan=False)

        return write_atomically(path, dump)


def _json_in_dir(directory: Path) -> Path:
    """The document inside an MLflow model directory, found through its ``MLmodel`` file.

    ``MLmodel`` is read as :func:`clvmodel.modeldir.verify` reads it (:mod:`clvmodel.mlmodel`:
    bounded, no YAML aliases, one rule for the data path); its loader is not checked here, since
    loading reads the JSON document only and imports nothing the directory names.
    """
    origin = str(directory)
    raw = mlmodel.read(directory, origin)
    if raw is None:
        return directory / JSON_NAME
    data = mlmodel.data_path(mlmodel.python_function(mlmodel.parse(raw, origin), origin), origin)
    candidate = (directory / data).resolve()
    if directory.resolve() not in candidate.parents:  # a link inside may still point out of the directory
        raise ClvError(f"{directory}: MLmodel points outside the model directory; refusing to load it")
    return candidate if candidate.is_file() else candidate / JSON_NAME


def load_document(path: str | Path) -> dict[str, Any]:
    """The raw JSON document of a model directory or file."""
    path = Path(path)
    if not path.exists():
        raise ClvError(f"model {path} not found; train one with `clvmodel train CONFIG` or pass a model directory")
    json_path = _json_in_dir(path) if path.is_dir() else path
    if not json_path.is_file():
        raise ClvError(f"{path} holds no {JSON_NAME}; pass a directory written by clvmodel train")
    # Bounded: size, nesting depth (a document nested 200,000 deep would exhaust Python's
    # recursion) and no NaN/Infinity tokens; the schema is checked by TrainedModel.from_document.
    return schema.read_json(json_path, "the model is corrupted, retrain it")


def load(path: str | Path, *, origin: str | None = None) -> TrainedModel:
    """Load a trained model from a local directory or JSON file.

    An MLflow ``models:/``/``runs:/`` URI is fetched first by :func:`clvmodel.load_model` (through
    :mod:`clvmodel.integrations.mlflow_tracking`; only that package imports mlflow), which passes the
    URI as ``origin`` for the messages; this module, low in the flow, imports nothing above it.
    """
    text = origin or str(path)
    local = Path(path)
    if str(path).startswith(("models:/", "runs:/")):
        raise ClvError(f"{path} is an MLflow URI; load it with clvmodel.load_model, which fetches it first")
    document = load_document(local)
    model = TrainedModel.from_document(document, origin=text)
    if document.get("challenger"):
        model.challenger = load_challenger(local if local.is_dir() else local.parent.parent, origin=text)
    return model


def load_challenger(model_dir: Path, origin: str) -> Any:
    """The challenger saved in ``model_dir/challenger`` (verified by its own checksums)."""
    from clvmodel.models.challenger import Challenger

    folder = model_dir / CHALLENGER_DIR
    if not folder.is_dir():
        raise ClvError(f"{origin}: the model lists a challenger but {folder} is missing; copy the whole model directory")
    return Challenger.load(folder)
