"""The trained-model document's schema, and a bounded reader for JSON documents.

A model directory may come from anyone, and the document's checksum is a plain SHA-256 that an
editor can recompute: it detects corruption, not tampering. So every field is hostile input and
is checked here, with strict types and allowed values, *before* any of it is used (in SQL, in
arithmetic, in a file name):

* :func:`parse_json` (bytes) and :func:`read_json` (a file) read a document with bounds: its size (:data:`MAX_BYTES`), its nesting
  (:data:`MAX_DEPTH`; Python's parser would otherwise raise ``RecursionError`` on a document
  nested 200,000 deep) and no ``NaN``/``Infinity`` tokens (not JSON; clvmodel never writes them);
* :func:`check_depth` bounds the nesting of a document already parsed (one handed to
  :meth:`clvmodel.artifact.TrainedModel.from_document` by the Python API or a Spark worker);
* :func:`validate` checks the whole document against :class:`ModelDocument` (pydantic, strict:
  ``"0.5"`` is not a number and ``null`` is not a parameter), reusing the training config's own
  models (:mod:`clvmodel.config`) for the embedded ``config``, ``clv`` and ``segments``.

Every failure is a :class:`~clvmodel.errors.ClvError` of one line naming the field.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, Field, ValidationError, field_validator, model_validator

from clvmodel.config import (
    ClvConfig,
    Config,
    DataConfig,
    Problem,
    SegmentConfig,
    SummaryDataConfig,
    _data_kind,
    excerpt,
    one_line,
)
from clvmodel.errors import ClvError
from clvmodel.models import registry

__all__ = ["MAX_BYTES", "MAX_DEPTH", "ModelDocument", "parse_json", "read_json", "check_depth", "validate"]

#: A model document is a few kilobytes (a handful of parameters, a 4x4 covariance, the config).
MAX_BYTES = 50 * 1024 * 1024
#: The deepest real document nests 5 levels (models.bgnbd.covariance_log_params.matrix[i][j]).
MAX_DEPTH = 32
#: Time units of the transaction models (rfm.UNIT_DAYS: a month is 365.25 / 12 days, a year
#: 365.25 days) and the subscription model's periods (config.SubscriptionConfig.period).
#: A model trained on a transaction log is in any of them (days / 1, 7, 30.4375, 365.25); one
#: trained on a published summary (``data.format: rfm``) is in the summary's unit.
BTYD_UNITS = ("day", "week", "month", "year")
#: The units a transaction log is summarised in (:data:`clvmodel.rfm.UNIT_DAYS`).
TRANSACTION_UNITS = ("day", "week", "month", "year")
SUBSCRIPTION_UNITS = ("day", "week", "month", "year")


# --- reading ---------------------------------------------------------------------------------


class _NotJson(ValueError):
    """A token Python's parser reads but JSON has not (``NaN``, ``Infinity``)."""


def _refuse_constant(token: str) -> float:
    raise _NotJson(f"{token} is not a JSON number")


def parse_json(raw: bytes | str, origin: str, fix: str, max_bytes: int | None = None) -> Any:
    """Parse JSON bytes (or text) within :data:`MAX_BYTES` and :data:`MAX_DEPTH`, or refuse them.

    The one bounded JSON reader of clvmodel's documents: :func:`read_json`, a model directory's
    document (:mod:`clvmodel.modeldir`) and its manifest (:func:`clvmodel.integrity.check_manifest`)
    all parse through here, so the size, depth and ``NaN`` rules are the same everywhere.

    Parameters
    ----------
    raw
        The document's bytes (UTF-8) or text.
    origin
        What the messages name (a path).
    fix
        What the user should do, ending each message (e.g. ``"retrain it"``).
    max_bytes
        The size limit (default :data:`MAX_BYTES`).

    Raises
    ------
    ClvError
        Too large, not UTF-8, not JSON (``NaN`` and ``Infinity`` included), or nested too deep.
    """
    limit = MAX_BYTES if max_bytes is None else max_bytes
    if len(raw) > limit:
        raise ClvError(f"{origin}: {len(raw):,} bytes, more than a model document's {limit:,}; {fix}")
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        document = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:  # the C parser recurses once per level before any bound of ours applies
        raise ClvError(f"{origin}: nested deeper than {MAX_DEPTH} levels, not a model document; {fix}") from None
    except _NotJson as err:
        raise ClvError(f"{origin}: not valid JSON ({err}); {fix}") from None
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise ClvError(f"{origin}: not valid JSON ({err.__class__.__name__}); {fix}") from None
    check_depth(document, origin, fix)
    return document


def read_json(path: Path, fix: str) -> Any:
    """Parse the JSON file at ``path`` with :func:`parse_json` (reading at most one byte past :data:`MAX_BYTES`).

    Raises
    ------
    ClvError
        Too large, not UTF-8, not JSON (``NaN`` and ``Infinity`` included), or nested too deep.
    """
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ClvError(f"{path}: {size:,} bytes, more than a model document's {MAX_BYTES:,}; {fix}")
    with open(path, "rb") as handle:
        raw = handle.read(MAX_BYTES + 1)
    return parse_json(raw, str(path), fix)


def check_depth(document: Any, origin: str, fix: str) -> None:
    """Refuse containers nested deeper than :data:`MAX_DEPTH` (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ClvError(f"{origin}: nested deeper than {MAX_DEPTH} levels, not a model document; {fix}")
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)


# --- the schema ------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Text = Annotated[str, Field(max_length=256)]


def _require(data: Any, keys: tuple[str, ...], what: str) -> Any:
    """A document's section holds every key (a default would hide a truncated or edited section)."""
    if isinstance(data, dict):
        missing = [key for key in keys if key not in data]
        if missing:
            raise ValueError(f"{what} lacks {', '.join(missing)}")
    return data


class DocumentData(DataConfig):
    """``config.data`` as a model carries it: the reading rules scoring applies to new files.

    The delimiter is passed to DuckDB as a parameter; it must still be a delimiter (the rule of
    :class:`~clvmodel.config.DataConfig`: one character that is not a quote, a line break, a
    letter or a digit, or ``whitespace``).
    """

    model_config = ConfigDict(strict=True, allow_inf_nan=False)

    date_format: Annotated[str, Field(max_length=64)] | None = None


class DocumentSummaryData(SummaryDataConfig):
    """``config.data`` of a model trained on a published RFM summary (``format: rfm``)."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)


class DocumentConfig(Config):
    """The training config embedded in the document (the same schema as the YAML file's)."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)

    data: Annotated[
        Annotated[DocumentData, Tag("transactions")] | Annotated[DocumentSummaryData, Tag("rfm")],
        Discriminator(_data_kind),
    ] | None = None


class DocumentClv(ClvConfig):
    """CLV settings; ``fee`` (payment per period) for the subscription model."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)

    fee: Annotated[float, Field(ge=0.0)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, data: Any) -> Any:
        return _require(data, ("horizon", "discount_rate", "margin"), "clv")


class DocumentSegments(SegmentConfig):
    """Segment thresholds, every one given."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, data: Any) -> Any:
        return _require(data, tuple(SegmentConfig.model_fields), "segments")


class TierBoundaries(_Strict):
    """The lowest value of the ``vip``, ``high`` and ``medium`` tiers (inclusive), best first."""

    vip: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    high: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    medium: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _monotone(self) -> "TierBoundaries":
        if not self.vip >= self.high >= self.medium:
            raise ValueError(
                f"boundaries must not rise from a better tier to a worse one (vip >= high >= medium), got "
                f"{self.vip!r}, {self.high!r}, {self.medium!r}"
            )
        return self


class SegmentBoundaries(_Strict):
    """Segment boundaries fixed at training (:func:`clvmodel.segments.fit_boundaries`): on the value,
    and on expected purchases (the tiers of a customer without a value); at least one."""

    predicted_clv: TierBoundaries | None
    expected_purchases: TierBoundaries | None

    @model_validator(mode="after")
    def _some(self) -> "SegmentBoundaries":
        if self.predicted_clv is None and self.expected_purchases is None:
            raise ValueError("segment_boundaries must give predicted_clv or expected_purchases boundaries")
        return self


class Covariance(_Strict):
    """Covariance of the log-parameters, rows and columns named by ``params``."""

    params: list[Text]
    matrix: list[list[Finite | None]]


class DesignState(_Strict):
    """A covariate model's design (:meth:`clvmodel.models.covariates.Design.to_dict`): which raw
    columns, numeric or categorical, the levels of each categorical one (first = baseline), and
    the encoded columns (one per numeric covariate, one per non-baseline level)."""

    covariates: Annotated[list[Text], Field(min_length=1, max_length=256)]
    kinds: dict[Text, Literal["numeric", "categorical"]]
    levels: dict[Text, Annotated[list[Text], Field(min_length=2, max_length=1000)]] = {}
    columns: Annotated[list[Text], Field(min_length=1, max_length=10_000)]

    @model_validator(mode="after")
    def _consistent(self) -> "DesignState":
        if len(set(self.covariates)) != len(self.covariates) or set(self.kinds) != set(self.covariates):
            raise ValueError("design.kinds must name each of design.covariates once")
        categorical = {name for name, kind in self.kinds.items() if kind == "categorical"}
        if set(self.levels) != categorical:
            raise ValueError("design.levels must list the levels of exactly the categorical covariates")
        if any(len(set(levels)) != len(levels) for levels in self.levels.values()):
            raise ValueError("design.levels must not repeat a level")
        width = sum(len(self.levels[name]) - 1 if name in categorical else 1 for name in self.covariates)
        if len(self.columns) != width or len(set(self.columns)) != width:
            raise ValueError(f"design.columns must be {width} distinct encoded columns")
        return self


#: Prefixes of a covariate model's coefficients (:mod:`clvmodel.models.covariate_model`).
_COEFFICIENTS = ("life.", "trans.")


class FittedState(_Strict):
    """A summary-fitted family's state (:meth:`clvmodel.models.base.FittedModel.to_dict`).

    Its parameters are exactly the family's ``param_names`` (from the registry's class), and any
    other key is one of the family's ``state_fields`` holding a finite number or null
    (Gamma-Gamma's ``correlation`` and ``excluded``), or, of kind ``"design"``, a
    :class:`DesignState`. A covariate family's (registry ``covariates``) must hold its ``design``,
    and its parameters are then the ``param_names`` (> 0) plus ``life.<column>`` and
    ``trans.<column>`` for every encoded column (finite, of either sign).
    """

    model_config = ConfigDict(extra="allow")

    type: Text
    params: dict[Text, Finite]
    standard_errors: dict[Text, Finite | None] = {}
    log_likelihood: Finite | None = None
    n: Annotated[float, Field(ge=0)] | None = None
    #: :data:`clvmodel.models.mle.CONVERGED`, or ``ridge`` when the MLE is a limit at infinity and
    #: ``limit`` holds the quantities identified there (absent in documents written before).
    status: Literal["converged", "ridge"] = "converged"
    limit: dict[Text, Finite] | None = None
    covariance_log_params: Covariance | None = None

    @model_validator(mode="after")
    def _parameters(self) -> "FittedState":
        cls = _summary_family(self.type)
        expected = list(cls.param_names)
        extra = self.model_extra or {}
        if registry.family(self.type).covariates:
            if "design" not in extra:
                raise ValueError(f"a {self.type} state must hold its design")
            try:
                design = DesignState.model_validate(extra["design"], strict=True)
            except ValidationError as err:
                first = err.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                raise ValueError(f"design{'.' + where if where else ''}: {first['msg']}") from None
            expected += [prefix + column for prefix in _COEFFICIENTS for column in design.columns]
        if set(self.params) != set(expected):
            raise ValueError(f"params must be exactly {', '.join(expected)}")
        for name, value in self.params.items():
            if name.startswith(_COEFFICIENTS) and name not in cls.param_names:
                continue  # a coefficient: any finite value (Finite above)
            if value < 0 or (value == 0 and name not in getattr(cls, "may_be_zero", ())):
                raise ValueError(f"parameter {name} must be > 0, got {value!r}")
        fields = getattr(cls, "state_fields", {})
        for key, value in extra.items():
            if key not in fields:
                raise ValueError(f"unknown field {_excerpt(key)} in a {self.type} state")
            if fields[key] == "design":
                continue  # checked above
            number = not isinstance(value, bool) and isinstance(value, (int, float))
            if fields[key] == "count" and not (number and isinstance(value, int) and value >= 0):
                raise ValueError(f"{key} must be a whole number >= 0")
            if value is not None and not (number and float("-inf") < value < float("inf")):
                raise ValueError(f"{key} must be a finite number or null")
        covariance = self.covariance_log_params
        if covariance is not None:
            size = len(self.params)
            if sorted(covariance.params) != sorted(self.params) or len(covariance.matrix) != size or any(
                len(row) != size for row in covariance.matrix
            ):
                raise ValueError("covariance_log_params must be a square matrix over the params")
        return self


def _summary_family(name: str) -> Any:
    """The class of a registered family saved as a :class:`FittedState`; ``ValueError`` otherwise."""
    if name not in registry.names() or registry.family(name).role in ("challenger", "retention"):
        raise ValueError(f"unknown model type {_excerpt(name)}")
    return registry.family_class(name)


class SbgOptions(_Strict):
    method: Literal["L-BFGS-B", "Nelder-Mead", "BFGS", "Powell", "TNC"] = "L-BFGS-B"
    maxiter: Annotated[int, Field(ge=1, le=1_000_000)] = 1000


class SbgState(_Strict):
    """The subscription model's state (:meth:`clvmodel.models.sbg.ShiftedBetaGeometric.to_dict`)."""

    model: Literal["sbg"]
    options: SbgOptions = SbgOptions()
    params: dict[Literal["alpha", "beta"], Positive]
    standard_errors: dict[Text, Finite | None]
    log_likelihood: Finite
    n: Annotated[int, Field(ge=0)]
    converged: bool = True

    @model_validator(mode="after")
    def _both(self) -> "SbgState":
        if set(self.params) != {"alpha", "beta"}:
            raise ValueError("params must be exactly alpha, beta")
        return self


def _state_kind(value: Any) -> str:
    """Which schema a state follows: the subscription model's (it names itself ``model``) or the
    summary-fitted families' (``type``)."""
    return "subscription" if isinstance(value, dict) and "model" in value else "fitted"


#: One state per fitted family, named by its registry name; which name may hold which schema is
#: checked by :meth:`ModelDocument._consistent` against the registry.
ModelStates = dict[
    Text,
    Annotated[
        Annotated[FittedState, Tag("fitted")] | Annotated[SbgState, Tag("subscription")],
        Discriminator(_state_kind),
    ],
]



class ChannelProfile(_Strict):
    values: dict[Text, Finite | Text]
    share: Annotated[float, Field(ge=0.0, le=1.0)]


class ChannelDocument(_Strict):
    """One channel of :class:`clvmodel.models.channels.ChannelState`."""

    customers: Annotated[int, Field(ge=0)]
    repeat_customers: Annotated[int, Field(ge=0)]
    first_order_value: Annotated[float, Field(ge=0.0)] | None = None
    spend: FittedState | None = None
    profiles: list[ChannelProfile] = []

    @model_validator(mode="after")
    def _spend_is_spend(self) -> "ChannelDocument":
        if self.spend is not None and registry.family(self.spend.type).role != "spend":
            raise ValueError(f"a channel's spend model must be a spend model, not {_excerpt(self.spend.type)}")
        return self


class AcquisitionDocument(_Strict):
    """:class:`clvmodel.models.channels.AcquisitionState`: what values a new customer per channel."""

    channel: Text | None = None
    covariates: list[Text] = []
    purchase_model: Text
    min_repeat_customers: Annotated[int, Field(ge=1)]
    channels: dict[Text, ChannelDocument]


class ChallengerLink(_Strict):
    path: Literal["challenger"]


class ModelDocument(_Strict):
    """The trained-model document (:meth:`clvmodel.artifact.TrainedModel.to_document`)."""

    format: Literal["clvmodel/trained-model"]
    format_version: Annotated[int, Field(ge=1)]
    checksum: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=256)]
    created: Annotated[str, Field(max_length=64)] = ""
    time_unit: Literal["day", "week", "month", "year"]
    calibration_end: dt.date | None = None
    observation_end: dt.date | None = None
    columns: dict[Literal["customer_id", "date", "amount"], Annotated[str, Field(min_length=1, max_length=256)]]
    clv: DocumentClv
    segments: DocumentSegments
    #: Absent in documents written before the boundaries were fixed at training (then ranked per batch).
    segment_boundaries: SegmentBoundaries | None = None
    models: ModelStates
    primary: Text | None = None
    selection: dict[Text, Any] = {}
    challenger: ChallengerLink | None = None
    acquisition: AcquisitionDocument | None = None
    config: dict[str, Any] = {}
    versions: dict[Text, Text] = {}

    @model_validator(mode="after")
    def _consistent(self) -> "ModelDocument":
        fitted = list(self.models)
        for name, state in self.models.items():
            if name not in registry.names() or registry.family(name).role == "challenger":
                raise ValueError(f"unknown model {_excerpt(name)} in models")
            expected = SbgState if registry.family(name).role == "retention" else FittedState
            if not isinstance(state, expected) or getattr(state, "type", name) != name:
                raise ValueError(f"models.{name} is not a {name} state")
        if not fitted:
            raise ValueError("the document holds no model")
        if self.acquisition is not None and (
            self.acquisition.purchase_model not in fitted
            or registry.family(self.acquisition.purchase_model).role != "purchase"
        ):
            raise ValueError(f"acquisition.purchase_model {_excerpt(self.acquisition.purchase_model)} is not a purchase model of the document")
        if self.primary is not None and self.primary not in fitted:
            raise ValueError(f"primary model {self.primary!r} is not among its models ({', '.join(fitted)})")
        if self.primary is not None and registry.family(self.primary).role not in ("purchase", "retention"):
            raise ValueError(f"primary model {self.primary!r} is not a purchase model")
        retention = [name for name in fitted if registry.family(name).role == "retention"]
        subscription = bool(retention) and retention == fitted
        if retention and not subscription:
            raise ValueError(f"{retention[0]} is a subscription model and is saved alone")
        units = SUBSCRIPTION_UNITS if subscription else BTYD_UNITS
        if self.time_unit not in units:
            raise ValueError(
                f"time_unit {self.time_unit!r} is not a unit of its models ({', '.join(fitted)}): use {' or '.join(units)}"
            )
        if not subscription and set(self.columns) != {"customer_id", "date", "amount"}:
            raise ValueError("columns must name customer_id, date and amount")
        return self


# --- validation ------------------------------------------------------------------------------


def _excerpt(value: Any, limit: int = 40) -> str:
    """At most ``limit`` characters, ``…`` included (:func:`clvmodel.config.excerpt` adds it after)."""
    return excerpt(value, limit - 1)


def _describe(problem: Problem) -> str:
    """A document's problem (:func:`clvmodel.config.one_line`): where in the document, what, the value (cut short)."""
    loc = list(problem.loc)
    if len(loc) > 2 and loc[0] == "models" and loc[2] in ("fitted", "subscription"):
        del loc[2]  # the union's tag (:func:`_state_kind`), not a key of the document
    if len(loc) > 2 and loc[:2] == ["config", "data"] and loc[2] in ("transactions", "rfm"):
        del loc[2]  # the data section's tag (:func:`clvmodel.config._data_kind`)
    where = ".".join(str(part) for part in loc)
    msg = " ".join(problem.message.split())  # one line, whatever a validator wrote
    given = problem.given
    shown = "" if isinstance(given, (dict, list)) or problem.kind == "value_error" else f" (got {_excerpt(given)})"
    place = f" at {where}" if where else ""
    return f"invalid model document{place}: {msg}{shown}; retrain the model or restore its directory"


def validate(document: dict[str, Any], origin: str) -> ModelDocument:
    """Check ``document`` against :class:`ModelDocument`; raise a one-line :class:`ClvError`.

    Validated in JSON mode (dates as ISO text, as the file holds them) with strict types: a
    parameter written as text, ``null`` where a number belongs, ``NaN`` or ``Infinity``, an
    unknown key or a time unit its models do not use are all refused.
    """
    try:
        text = json.dumps(document, allow_nan=False)
    except (ValueError, TypeError) as err:
        raise ClvError(
            f"{origin}: invalid model document: {err.__class__.__name__} ({_excerpt(str(err), 80)}); retrain the model"
        ) from None
    try:
        checked = ModelDocument.model_validate_json(text, strict=True)
    except ValidationError as err:
        raise ClvError(one_line(err, origin, _describe)) from None
    if checked.config:  # empty in models built by hand through the Python API
        try:
            config = DocumentConfig.model_validate_json(json.dumps(checked.config), strict=True)
        except ValidationError as err:
            raise ClvError(one_line(err, origin, _describe, prefix=("config",))) from None
        if config.kind == "transactions" and checked.time_unit not in TRANSACTION_UNITS:
            raise ClvError(
                f"{origin}: invalid model document: time_unit {checked.time_unit!r} is not a unit of a model trained on "
                f"a transaction log: use {' or '.join(TRANSACTION_UNITS)}; retrain the model or restore its directory"
            )
        unit = config.subscriptions.period if config.subscriptions is not None else config.time_unit
        if unit != checked.time_unit:
            raise ClvError(
                f"{origin}: invalid model document at time_unit: {checked.time_unit!r} differs from the config's "
                f"{unit!r}; retrain the model or restore its directory"
            )
    return checked
