"""Typed training config, parsed once from YAML.

A config file is read with :func:`read_yaml` (safe loading: no object tags; bounded: at most
:data:`MAX_YAML_BYTES`, no aliases, no duplicate keys, at most :data:`MAX_YAML_DEPTH` levels), dotted
``--set key=value`` overrides are applied to the raw mapping, and the result is validated into
:class:`Config`. Unknown keys are errors: a typo must not silently fall back to a default. Every
number must be finite (``.nan`` and ``.inf`` are refused) and ``clv.horizon`` is at most 100
years (:data:`MAX_HORIZON`). A value echoed in a message is cut to a short excerpt
(:func:`excerpt`).

The dotted names below are a public contract (docs, users' scripts and ``--set`` use them)::

    name: cdnow
    data:
      source: bundled:CDNOW_sample      # or a path / glob to CSV or Parquet
      columns: {customer_id: customer_id, date: date, amount: amount}
      date_format: "%Y%m%d"            # optional; ISO dates / timestamps parse without it
      delimiter: ","                   # "whitespace" for CDNOW-style text files
      negative_amounts: error          # error | exclude   (refund rows)
      duplicates: keep                 # keep | drop   (exact duplicate rows; counted either way)
      encoding: utf-8                  # utf-8 | latin-1 | utf-16
      max_amount: 1000000000           # sanity limit per row; null: none
      amount_format: auto              # auto | plain | {decimal_mark: ",", thousands_separator: ".",
                                       #   currency_symbols: ["€"], parentheses_negative: true}
    time_unit: week                    # day | week | month | year (days / 1, 7, 30.4375, 365.25)
    calibration_end: 1997-09-30        # optional: without it there is no holdout
    observation_end: 1998-06-30        # optional: defaults to the last transaction date
    models: [historical, bgnbd, gamma_gamma]   # also pareto_nbd, mbgnbd
    model: auto                        # the purchase model behind predicted_clv, or auto
    selection: {metric: spend_mae}     # what auto compares on the holdout
    clv: {horizon: 39, discount_rate: 0.0, margin: 1.0}   # horizon: "3 years"; annual_discount_rate: 0.10
    intervals: {level: 0.9, draws: 1000, seed: 0}   # *_lower/*_upper columns; draws 0: none
    historical: {retention_periods: null}
    tracking: {experiment: cdnow, enabled: true}
    output: {model_dir: models/cdnow}

A subscription config (shifted-beta-geometric) has ``models: [sbg]`` and a ``subscriptions``
section instead of ``data``; see :class:`SubscriptionConfig` and ``configs/subscription_*.yaml``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import reprlib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from clvmodel.errors import ClvError
from clvmodel.models import registry
from clvmodel.units import MAX_HORIZON as _MAX_HORIZON

__all__ = [
    "Columns",
    "DataConfig",
    "AmountFormat",
    "ClvConfig",
    "SubscriptionConfig",
    "HistoricalConfig",
    "IntervalConfig",
    "ChallengerConfig",
    "SegmentConfig",
    "SelectionConfig",
    "TrackingConfig",
    "OutputConfig",
    "Config",
    "MODEL_NAMES",
    "load_config",
    "parse_config",
    "apply_overrides",
    "flatten",
    "MAX_HORIZON",
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "read_yaml",
    "parse_yaml",
    "excerpt",
    "cut",
    "Problem",
    "one_line",
]

#: The longest CLV horizon, per time unit: 100 years (36,525 days, 5,217 whole weeks). Longer
#: horizons mean nothing for a customer and cost memory and time in proportion (a horizon of
#: 10^9 weeks was a MemoryError), so the CLI, configs and the REST server all refuse them.
MAX_HORIZON = _MAX_HORIZON

#: The largest YAML file read (configs and CAC files are a few KB): a bound on the time and
#: memory any file can cost before it is validated.
MAX_YAML_BYTES = 1_000_000
#: The deepest nesting of YAML collections read (configs nest 3 levels); deeper is refused
#: before PyYAML's recursive composer could exhaust the stack.
MAX_YAML_DEPTH = 20
#: The longest excerpt of a user's value echoed in a message.
MAX_ECHO = 80

#: Models a config may list (the registry's families). Purchase models need a spend model to give CLV in money.
MODEL_NAMES = registry.names()
PURCHASE_MODEL_NAMES = registry.names("purchase")

#: Holdout metrics ``model: auto`` may select on, and whether lower is better.
SELECTION_METRICS = {
    **{f"{target}_{name}": True for target in ("purchases", "spend") for name in ("abs_pct_error", "rmse", "mae")},
    **{f"{target}_{name}": False for target in ("purchases", "spend") for name in ("spearman", "top20_share")},
}


class _Strict(BaseModel):
    # allow_inf_nan=False: YAML's .nan and .inf are floats to pydantic; a config saying
    # discount_rate: .inf trained and saved null, which broke every later score.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Columns(_Strict):
    """Names of the input columns holding the customer id, the date and the amount."""

    customer_id: str = "customer_id"
    date: str = "date"
    amount: str = "amount"


class AmountFormat(_Strict):
    """How amounts written as text read (``data.amount_format``; the rules: :mod:`clvmodel.amounts`).

    ``decimal_mark`` ``.`` or ``,``; ``thousands_separator`` ``,`` ``.`` ``'`` a blank, or ``""``
    for none (default: the other mark); ``currency_symbols`` stripped before or after the number
    (default: any currency sign and a three-letter code such as ``USD``); ``parentheses_negative``:
    ``(12.50)`` is -12.50.
    """

    decimal_mark: Literal[".", ","] = "."
    thousands_separator: Literal[",", ".", "'", " ", ""] | None = None
    currency_symbols: list[str] | None = None
    parentheses_negative: bool = True

    @model_validator(mode="after")
    def _distinct_marks(self) -> "AmountFormat":
        if self.thousands_separator == self.decimal_mark:
            raise ValueError(f"the thousands separator and the decimal mark are both {self.decimal_mark!r}")
        for symbol in self.currency_symbols or []:
            if not symbol.strip() or any(ch.isdigit() or ch in ".,()+-'" for ch in symbol) or len(symbol) > 10:
                raise ValueError(f"currency symbol {excerpt(symbol)} must be 1-10 characters without digits, "
                                 "separators, signs or parentheses")
        return self


class DataConfig(_Strict):
    """Where the transactions are and how to read them (the rules: :mod:`clvmodel.io`).

    ``encoding`` is the text encoding of CSV files (the three DuckDB reads without an
    extension). ``duplicates``: exact duplicate rows are kept as same-day purchases (``keep``,
    the default: CDNOW's own files hold real ones) or dropped as export duplicates (``drop``);
    counted either way. ``max_amount``: an amount above it is refused as a likely data error (an
    id or card number in the amount column); ``None`` disables the check. ``memory_limit``: DuckDB's
    limit (e.g. ``8GB``); beyond it DuckDB spills to a temporary directory, which is how a log
    larger than memory is summarised (default: DuckDB's own, 80 % of RAM). ``temp_directory``:
    where DuckDB writes those spill files (its last level is created if missing, its parent must
    exist; the files are removed when the run ends); default DuckDB's own, ``.tmp`` in the working
    directory. Give a disk with room for about the log's size when ``memory_limit`` is well below it.
    """

    format: Literal["transactions"] = "transactions"
    source: str
    columns: Columns = Columns()
    date_format: str | None = None
    delimiter: str = ","
    header: bool = True
    negative_amounts: Literal["error", "exclude"] = "error"
    duplicates: Literal["keep", "drop"] = "keep"
    encoding: Literal["utf-8", "latin-1", "utf-16"] = "utf-8"
    max_amount: float | None = Field(1e9, gt=0.0)
    memory_limit: str | None = Field(None, pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    # A setting of the machine that trains, not of the model: left out of every dump, so neither the
    # model document nor the MLflow run carries a local path, and a model stays readable by the
    # clvmodel versions before this setting (their documents refuse unknown keys).
    temp_directory: str | None = Field(None, min_length=1, exclude=True)
    amount_format: Annotated[
        Annotated[Literal["auto", "plain"], Tag("text")] | Annotated[AmountFormat, Tag("mapping")],
        Discriminator(lambda v: "text" if isinstance(v, str) else "mapping"),
    ] = "auto"

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        # The same rule in a config and in a saved model's document (clvmodel.document), so a
        # model that trains can always be scored.
        if value != "whitespace" and (len(value) != 1 or value.isalnum() or value in "\"'\r\n\x00"):
            raise ValueError("must be one character (not a quote, line break, letter or digit) or 'whitespace'")
        return value


class SummaryColumns(_Strict):
    """Names of a published RFM summary's columns (``data.format: rfm``).

    ``customer_id``, ``monetary_value`` and ``weights`` are optional in the file: without an id
    column the rows are numbered ``1..n`` (said in the run's report); without ``monetary_value``
    there is no spend model; ``weights`` counts the customers each row stands for (as in the
    donations summary bundled with lifetimes).
    """

    customer_id: str = "customer_id"
    frequency: str = "frequency"
    recency: str = "recency"
    T: str = "T"
    monetary_value: str = "monetary_value"
    weights: str = "weights"


class SummaryDataConfig(_Strict):
    """A published RFM summary to train on (``data.format: rfm``), in the config's time unit.

    One row per customer (or per group of identical customers, counted by ``weights``):
    ``frequency`` repeat purchases, ``recency`` the age at the last one, ``T`` the age at the
    end of calibration (for a discrete-time model: transactions, the last opportunity with one,
    and the number of opportunities). When the file also holds ``frequency_holdout``,
    ``monetary_value_holdout`` and ``duration_holdout`` (as lifetimes'
    ``calibration_and_holdout_data`` writes them), the holdout leaderboard is computed. Read
    by the same rules as a transaction file (:mod:`clvmodel.io`): CSV or Parquet, or
    ``bundled:donations`` / ``bundled:cdnow_customers_summary``.
    """

    format: Literal["rfm"]
    source: str
    columns: SummaryColumns = SummaryColumns()
    delimiter: str = ","
    encoding: Literal["utf-8", "latin-1", "utf-16"] = "utf-8"

    _one_character = field_validator("delimiter")(DataConfig._one_character.__func__)  # type: ignore[attr-defined]


def _data_kind(value: Any) -> str:
    """The ``data.format`` of a raw or parsed data section (``transactions`` when not given)."""
    kind = value.get("format", "transactions") if isinstance(value, dict) else getattr(value, "format", "transactions")
    return kind if isinstance(kind, str) else "?"  # an unknown tag: pydantic names the valid ones


#: The data section: a transaction log, or a published RFM summary (``format: rfm``).
AnyData = Annotated[
    Annotated[DataConfig, Tag("transactions")] | Annotated[SummaryDataConfig, Tag("rfm")],
    Discriminator(_data_kind),
]


class CustomerColumns(_Strict):
    """The customer table's id column (matched as text to the log's ids)."""

    customer_id: str = "customer_id"


class CustomersConfig(_Strict):
    """A customer table: one row per customer, with its acquisition channel and covariates.

    Read as a CSV or Parquet file (``delimiter``, ``encoding`` as for the log). ``channel`` names
    the acquisition channel column (each channel gets its own acquisition value; a customer of
    the log without a row is in channel ``unknown``, and counted). ``covariates`` are
    time-invariant covariates of the purchase models (:mod:`clvmodel.models.covariates`: numeric
    as given, text one-hot with the first sorted level as baseline); with them every customer of
    the log needs a row, and BG/NBD and Pareto/NBD are fitted a second time with them
    (``bgnbd_cov``, ``pareto_nbd_cov``) beside the plain fits.
    """

    source: str
    columns: CustomerColumns = CustomerColumns()
    channel: str | None = None
    covariates: list[str] = []
    delimiter: str = ","
    encoding: Literal["utf-8", "latin-1", "utf-16"] = "utf-8"

    _one_character = field_validator("delimiter")(DataConfig._one_character.__func__)  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _distinct(self) -> "CustomersConfig":
        if len(set(self.covariates)) != len(self.covariates):
            twice = next(c for c in self.covariates if self.covariates.count(c) > 1)
            raise ValueError(f"covariate {excerpt(twice)} is listed twice")
        if self.columns.customer_id in self.covariates or self.columns.customer_id == self.channel:
            raise ValueError(f"the id column {excerpt(self.columns.customer_id)} cannot be a channel or covariate")
        if self.channel is None and not self.covariates:
            raise ValueError("name a channel column (channel: ...) or covariates (covariates: [...]), or drop the section")
        return self


class SubscriptionColumns(_Strict):
    customer_id: str = "customer_id"
    start: str = "start"
    end: str = "end"


class SubscriptionConfig(_Strict):
    """Subscription data for the sBG model: cohort survivor counts, or one row per subscriber.

    ``survivors`` are the customers still active at the start of periods 0, 1, ..., n (the first
    is the cohort size); the model is fitted on periods ``0..fitted_periods`` and the rest is a
    holdout. ``source`` is a CSV/Parquet file of ``customer_id, start, end`` (``end`` empty while
    active), converted to renewals per customer as of ``as_of`` (see
    :func:`clvmodel.models.sbg.durations_from_subscriptions`). ``fee`` is the payment per period.
    """

    survivors: list[int] | None = None
    fitted_periods: int | None = Field(None, ge=2)
    source: str | None = None
    columns: SubscriptionColumns = SubscriptionColumns()
    period: Literal["day", "week", "month", "year"] = "year"
    as_of: dt.date | None = None
    fee: float = Field(1.0, ge=0.0)

    @model_validator(mode="after")
    def _one_source(self) -> "SubscriptionConfig":
        if (self.survivors is None) == (self.source is None):
            raise ValueError("subscriptions: give exactly one of survivors (cohort counts) or source (a file)")
        if self.fitted_periods is not None and self.survivors is None:
            raise ValueError("subscriptions.fitted_periods applies to survivors only")
        if self.survivors is not None and self.fitted_periods is not None and self.fitted_periods > len(self.survivors) - 1:
            raise ValueError(
                f"subscriptions.fitted_periods {self.fitted_periods} must be at most the last period given "
                f"({len(self.survivors) - 1})"
            )
        return self


class ClvConfig(_Strict):
    """Horizon and discount rate of the valuations; margin as a fraction of revenue.

    ``horizon`` is a whole number of periods of the config's time unit, or a horizon with its
    unit (``"3 years"``, ``3y``, ``36m``, ``156w``, ``1095d``), converted exactly and rounded down
    to whole periods of the time unit (:mod:`clvmodel.units`). ``discount_rate`` is per period;
    ``annual_discount_rate`` (per year, instead) is converted to the per-period rate
    ``(1 + r)^(days per period / 365.25) − 1`` (``discount_rate`` then stays 0, its default). The
    horizon is at most 100 years,
    :data:`MAX_HORIZON` (checked with the time unit by :class:`Config`).
    """

    horizon: int | str = 39
    discount_rate: float = Field(0.0, ge=0.0)
    annual_discount_rate: float | None = Field(None, ge=0.0)
    margin: float = Field(1.0, gt=0.0, le=1.0)

    @field_validator("horizon", mode="before")
    @classmethod
    def _at_most_100_years(cls, value: Any) -> Any:
        # Before pydantic's union of int and str, whose errors would name its branches.
        if isinstance(value, str):
            from clvmodel.units import parse_horizon

            try:
                parse_horizon(value, None, name="clv.horizon")
            except ClvError as err:
                raise ValueError(str(err).removeprefix("clv.horizon ")) from None
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("write a whole number of periods or a horizon with its unit, e.g. 39 or \"3 years\"")
        if value <= 0:
            raise ValueError("Input should be greater than 0")
        if not float(value).is_integer():
            raise ValueError("must be a whole number of periods, or a horizon with its unit such as \"18 months\"")
        if value > MAX_HORIZON["day"]:
            raise ValueError(horizon_message(value))
        return int(value)

    @model_validator(mode="after")
    def _one_rate(self) -> "ClvConfig":
        # discount_rate 0 (its default) with an annual rate is no conflict: a saved config holds both.
        if self.annual_discount_rate is not None and self.discount_rate != 0:
            raise ValueError("give clv.discount_rate (per period) or clv.annual_discount_rate (per year), not both")
        return self


def horizon_message(horizon: Any, unit: str | None = None) -> str:
    """Why a horizon is too long, and the bound: one message for configs, the CLI and REST."""
    bound = (f"{MAX_HORIZON[unit]:,} {unit}s" if unit else
             f"{MAX_HORIZON['day']:,} days or {MAX_HORIZON['week']:,} weeks, in the model's time unit")
    return f"horizon {excerpt(horizon)} is more than 100 years; use at most {bound} (e.g. 52 weeks for a year)"


class ChallengerConfig(_Strict):
    """The scikit-learn challenger's inner split: features as of ``inner_cut``, targets after it.

    ``None`` derives it from the data (:func:`clvmodel.models.challenger.derive_inner_cut`): one
    holdout length before the calibration end when half the customers had bought by then, else the
    day by which half had (CDNOW's customers all arrive in its first 12 weeks); the run prints it.

    ``max_train_customers``: the regressors learn from a seeded random sample of this many
    customers when the training cohort is larger (:func:`clvmodel.models.challenger.training_sample`;
    the run prints the sample's size); ``None``: the whole cohort. Every customer is still scored.
    Off by default: at 10 M rows even a cap of 500,000 moved the holdout totals' % error between two
    seeds ~28× (purchases) and ~8× (spend) as much as the seed moves the whole cohort's fit (the
    challenger module's docstring has the figures).
    """

    inner_cut: dt.date | None = None
    # At least the challenger's min_customers (50), which the config does not change: refused here, in
    # one line, rather than by the fit.
    max_train_customers: int | None = Field(None, ge=50)


class IntervalConfig(_Strict):
    """Per-customer intervals by parametric bootstrap (see :mod:`clvmodel.uncertainty`); 0 draws: off."""

    level: float = Field(0.9, gt=0.0, lt=1.0)
    draws: int = Field(1000, ge=0)
    seed: int = 0


class HistoricalConfig(_Strict):
    """The historical formula's retention period, in the time unit; ``None`` derives it."""

    retention_periods: float | None = Field(None, gt=0.0)


class SegmentConfig(_Strict):
    """Segment thresholds: CLV tiers by share of the training customers, risk states by P(alive).

    A customer with ``p_alive < lost_below`` is ``lost``; else below ``at_risk_below`` is
    ``at_risk``; the rest are tiered by predicted CLV against boundaries fixed at training
    (:mod:`clvmodel.segments`): the lowest CLV of the top ``vip_share`` of the training customers
    starts ``VIP``, of the top ``high_share`` ``high``, of the top ``medium_share`` ``medium``;
    below is ``low``. Shares are cumulative fractions of the training customers.
    """

    vip_share: float = Field(0.01, gt=0.0, lt=1.0)
    high_share: float = Field(0.20, gt=0.0, lt=1.0)
    medium_share: float = Field(0.50, gt=0.0, le=1.0)
    at_risk_below: float = Field(0.5, ge=0.0, le=1.0)
    lost_below: float = Field(0.1, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> "SegmentConfig":
        if not self.vip_share < self.high_share < self.medium_share:
            raise ValueError("segments need vip_share < high_share < medium_share")
        if self.lost_below > self.at_risk_below:
            raise ValueError("segments need lost_below <= at_risk_below")
        return self


class SelectionConfig(_Strict):
    """How ``model: auto`` picks the purchase model behind ``predicted_clv``.

    With a holdout, by ``metric`` (``<target>_<name>``; lower is better for errors, higher for
    ``spearman`` and ``top20_share``); without one, by the lowest BIC (same data, so comparable).
    """

    metric: str = "spend_mae"

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in SELECTION_METRICS:
            raise ValueError(f"unknown selection metric {excerpt(value)}; choose one of: {', '.join(SELECTION_METRICS)}")
        return value


class TrackingConfig(_Strict):
    """MLflow experiment; the tracking URI comes from ``MLFLOW_TRACKING_URI`` or MLflow's default."""

    experiment: str = "clvmodel"
    enabled: bool = True


class OutputConfig(_Strict):
    model_dir: str | None = None


class Config(_Strict):
    """A training run, as the YAML file describes it."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    data: AnyData | None = None
    subscriptions: SubscriptionConfig | None = None
    customers: CustomersConfig | None = None
    time_unit: Literal["day", "week", "month", "year"] = "week"
    calibration_end: dt.date | None = None
    observation_end: dt.date | None = None
    models: list[str] = Field(default_factory=lambda: ["historical", "bgnbd", "gamma_gamma"])
    model: str = "auto"
    selection: SelectionConfig = SelectionConfig()
    clv: ClvConfig = ClvConfig()
    intervals: IntervalConfig = IntervalConfig()
    challenger: ChallengerConfig = ChallengerConfig()
    historical: HistoricalConfig = HistoricalConfig()
    segments: SegmentConfig = SegmentConfig()
    tracking: TrackingConfig = TrackingConfig()
    output: OutputConfig = OutputConfig()

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in MODEL_NAMES]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0])[:100], MODEL_NAMES, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown model {excerpt(unknown[0])}{hint}; valid models: {', '.join(MODEL_NAMES)}; remove it or fix its spelling"
            )
        if not value:
            raise ValueError("list at least one model, e.g. models: [historical, bgnbd, gamma_gamma]")
        if len(set(value)) != len(value):
            twice = next(m for m in value if value.count(m) > 1)
            raise ValueError(f"model {excerpt(twice)} is listed twice; list each model once")
        return value

    @field_validator("models")
    @classmethod
    def _with_variants(cls, value: list[str], info: ValidationInfo) -> list[str]:
        """With ``customers.covariates``, each listed family that has a covariate variant is fitted
        a second time with them (``bgnbd`` -> ``bgnbd_cov``), right after it: the leaderboard shows
        both. (A field validator, not a model one: ``customers`` is validated before ``models``, and
        a model-level "before" validator would make the saved document's strict JSON check read
        dates as Python strings.)"""
        customers = info.data.get("customers")
        if customers is None or not customers.covariates:
            return value
        expanded: list[str] = []
        for m in value:
            expanded.append(m)
            variant = registry.covariate_variant(m)
            if variant and variant not in value:
                expanded.append(variant)
        return expanded

    @property
    def kind(self) -> str:
        """The kind of data this run trains on: ``transactions``, ``rfm`` or ``subscriptions``
        (:data:`clvmodel.models.registry.DATA_KINDS`); it chooses the pipeline."""
        if self.subscriptions is not None:
            return "subscriptions"
        return self.data.format if self.data is not None else "transactions"

    @model_validator(mode="after")
    def _kind(self) -> "Config":
        retention = [m for m in self.models if registry.family(m).role == "retention"]
        if retention and (len(self.models) > 1 or self.subscriptions is None or self.data is not None):
            raise ValueError(
                f"{retention[0]} is the subscription model: list it alone (models: [{retention[0]}]) with a "
                "subscriptions section and no data section"
            )
        if self.data is None and self.subscriptions is None:
            raise ValueError("missing config key 'data' (the transactions to model)")
        if self.subscriptions is not None and not retention:
            raise ValueError(f"a subscriptions section needs models: [{', '.join(registry.names('retention'))}]")
        kind = self.kind
        unfit = [m for m in self.models if kind not in registry.family(m).data]
        if unfit:
            family = registry.family(unfit[0])
            raise ValueError(
                f"{unfit[0]} cannot be trained on {_KIND_TEXT[kind]}: it needs {' or '.join(_KIND_TEXT[d] for d in family.data)}"
            )
        dated = [key for key in ("calibration_end", "observation_end") if getattr(self, key) is not None]
        if kind == "rfm" and dated:
            raise ValueError(
                f"{dated[0]} does not apply to an RFM summary (data.format: rfm), which is already cut; its holdout, "
                "if any, is in the frequency_holdout, monetary_value_holdout and duration_holdout columns"
            )
        if self.customers is not None and kind != "transactions":
            raise ValueError(
                "a customers section needs a transaction log (data.format: transactions): the acquisition value "
                "reads each customer's first order from it"
            )
        return self

    @model_validator(mode="after")
    def _primary(self) -> "Config":
        if self.kind == "subscriptions":
            return self
        purchase = [m for m in self.models if registry.family(m).role == "purchase"]
        covariate = [m for m in self.models if registry.family(m).covariates]
        if covariate and (self.customers is None or not self.customers.covariates):
            raise ValueError(f"{covariate[0]} is fitted with covariates: add customers.covariates (and a customers section)")
        if self.model in covariate:
            raise ValueError(
                f"model {self.model} values new customers by their covariates and cannot score existing ones from "
                f"(x, t_x, T) alone; choose {registry.family(self.model).variant_of} or auto"
            )
        if self.model != "auto" and self.model not in purchase:
            raise ValueError(
                f"model {excerpt(self.model)} must be 'auto' or one of the purchase models listed in models ({', '.join(purchase) or 'none'})"
            )
        if any(registry.family(m).role == "challenger" for m in self.models) and self.calibration_end is None:
            raise ValueError("the challenger learns from an inner split of the calibration period: set calibration_end")
        if self.challenger.inner_cut and self.calibration_end and self.challenger.inner_cut >= self.calibration_end:
            raise ValueError(f"challenger.inner_cut {self.challenger.inner_cut} must be before calibration_end")
        spend = [m for m in self.models if registry.family(m).role == "spend"]
        if spend and not purchase:
            raise ValueError(f"{spend[0]} forecasts spend per purchase and needs a purchase model; add bgnbd")
        return self

    def settings_of(self, name: str) -> dict[str, Any]:
        """The constructor settings of family ``name``: its registry line's config section, if any."""
        section = registry.family(name).settings
        return dict(getattr(self, section)) if section else {}

    @model_validator(mode="after")
    def _horizon(self) -> "Config":
        if isinstance(self.clv.horizon, int) and self.clv.horizon > MAX_HORIZON[self.unit]:
            raise ValueError(f"clv.{horizon_message(self.clv.horizon, self.unit)}")
        try:
            self.clv_settings()
        except ClvError as err:
            raise ValueError(str(err)) from None
        return self

    @property
    def unit(self) -> str:
        """The unit of every horizon and per-period rate: ``time_unit``, or a subscription's period."""
        return self.subscriptions.period if self.subscriptions is not None else self.time_unit

    def clv_settings(self) -> Any:
        """The horizon in whole periods and the per-period discount rate (:class:`clvmodel.units.Settings`)."""
        from clvmodel.units import resolve

        return resolve(self.unit, defaults=self.clv.model_dump(),
                       names=("clv.horizon", "clv.discount_rate", "clv.annual_discount_rate"))

    def clv_used(self) -> dict[str, Any]:
        """``clv`` as a trained model stores it: ``horizon`` in whole periods, ``discount_rate`` per
        period, ``margin`` (what every scorer reads; the config as written is stored beside it)."""
        used = self.clv_settings()
        return {"horizon": used.periods, "discount_rate": used.discount_rate, "margin": self.clv.margin}

    @model_validator(mode="after")
    def _dates(self) -> "Config":
        if self.calibration_end and self.observation_end and self.calibration_end >= self.observation_end:
            raise ValueError(
                f"calibration_end {self.calibration_end} must be before observation_end {self.observation_end}"
            )
        return self

    @property
    def model_dir(self) -> Path:
        return Path(self.output.model_dir or f"models/{self.name}")


_KIND_TEXT = {"transactions": "a transaction log", "rfm": "an RFM summary (data.format: rfm)",
              "subscriptions": "subscriptions (a subscriptions section)"}


#: Example values for the fix part of a message, where a key's default is no good example.
_EXAMPLES: dict[str, str] = {
    "name": "my_model",
    "data": "{source: transactions.csv}",
    "data.source": "transactions.csv",
    "data.date_format": "'%Y-%m-%d'",
    "calibration_end": "1997-09-30",
    "observation_end": "1998-06-30",
    "models": "[historical, bgnbd, gamma_gamma]",
    "clv.margin": "0.3",
    "clv.discount_rate": "0.01",
    "historical.retention_periods": "52",
    "output.model_dir": "models/my_model",
    "data.max_amount": "1000000000",
    "subscriptions.fitted_periods": "7",
    "subscriptions.as_of": "2024-12-31",
}

#: What a value of each pydantic error kind should be, for the fix part of a message.
_KINDS = (
    ("int_", "write a whole number"),
    ("float_", "write a number"),
    ("bool_", "write true or false"),
    ("date_", "write a date as YYYY-MM-DD"),
    ("datetime_", "write a date as YYYY-MM-DD"),
    ("string_type", "write text (quote it in YAML)"),
    ("string_pattern_mismatch", "use letters, digits, '_', '.' and '-' only"),
    ("list_type", "write a list in brackets"),
    ("dict_type", "write a mapping of keys"),
    ("model_type", "write a mapping of keys"),
    ("model_attributes_type", "write a mapping of keys"),
    ("literal_error", "choose one of those"),
    ("greater_than", "use a larger value"),
    ("less_than", "use a smaller value"),
    ("finite", "write a finite number"),
    ("finite_number", "write a finite number"),
)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The config section class behind a field annotation (``Columns``, ``ClvConfig | None``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next((m for m in map(_model_of, typing.get_args(annotation)) if m is not None), None)
    return None


_DATA_SECTIONS: dict[str, type[BaseModel]] = {"transactions": DataConfig, "rfm": SummaryDataConfig}


def _without_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """``loc`` without the union tags pydantic inserts: after ``data`` (``data.rfm.columns`` ->
    ``data.columns``) and after ``amount_format`` (``text``, ``mapping``)."""
    loc = loc[:1] + loc[2:] if len(loc) > 1 and loc[0] == "data" and loc[1] in _DATA_SECTIONS else loc
    if "amount_format" in loc:
        at = loc.index("amount_format")
        if len(loc) > at + 1 and loc[at + 1] in ("text", "mapping"):
            loc = loc[: at + 1] + loc[at + 2:]
    return loc


def _section(loc: tuple[Any, ...], tag: str | None = None) -> type[BaseModel] | None:
    """The section class holding the key at ``loc`` (``Config`` for a top-level key); ``tag``
    is the data section's kind when the key is inside it."""
    if loc and loc[0] == "data" and len(loc) > 1:
        model: type[BaseModel] | None = _DATA_SECTIONS.get(tag or "transactions")
        loc = loc[1:]
    else:
        model = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if model is not None else None
        model = _model_of(field.annotation) if field is not None else None
    return model


def _example(loc: tuple[Any, ...]) -> str | None:
    """An example value for the key at ``loc``: from :data:`_EXAMPLES`, else its scalar default."""
    where = ".".join(str(p) for p in loc)
    if where in _EXAMPLES:
        return _EXAMPLES[where]
    section = _section(loc)
    field = section.model_fields.get(str(loc[-1])) if section is not None and loc else None
    default = getattr(field, "default", None)
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, (int, float, str)):
        return str(default)
    return None


def _describe(problem: Problem) -> str:
    """A config's problem (:func:`one_line`): where, what, and how to fix it, with an example."""
    raw_loc = problem.loc
    tag = str(raw_loc[1]) if len(raw_loc) > 1 and raw_loc[0] == "data" and raw_loc[1] in _DATA_SECTIONS else None
    loc = _without_tag(raw_loc)
    where = ".".join(str(p) for p in loc) or "config"
    kind = problem.kind
    if kind == "union_tag_invalid":
        return f"{where}.format must be one of: {', '.join(_DATA_SECTIONS)} (got {excerpt(problem.context.get('tag'))})"
    if kind == "extra_forbidden":
        section = _section(loc, tag)
        keys = list(section.model_fields) if section is not None else []
        close = difflib.get_close_matches(str(loc[-1]), keys, n=1, cutoff=0.6)
        hint = f" (did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?)" if close else ""
        parent = ".".join(str(p) for p in loc[:-1])
        listed = f"; keys {'of ' + parent if parent else 'at the top level'}: {', '.join(keys)}" if keys else ""
        return f"unknown config key '{where}'{hint}; remove it or fix its spelling{listed}"
    example = _example(loc) if loc else None
    if kind == "missing":
        return f"missing config key '{where}'; add it" + (f", e.g. {where}: {example}" if example else "")
    msg = problem.message
    given = problem.given
    if not loc:  # a rule across keys: the input is the whole config, not worth echoing
        return msg
    if kind == "value_error":  # our own validators' messages name the fix themselves
        fix = ""
    else:
        fix = next((text for prefix, text in _KINDS if kind.startswith(prefix)), "fix the value")
        fix = "; " + fix + (f", e.g. {where}: {example}" if example else "")
    shown = excerpt(given)
    if isinstance(given, (dict, list)) and len(shown) > 60:  # a section: the message says enough
        return f"{where}: {msg}{fix}"
    return f"{where}: {msg} (got {shown}){fix}"


def parse_config(raw: dict[str, Any], origin: str = "config") -> Config:
    """Validate a raw mapping into a :class:`Config`, raising a one-line :class:`ClvError`."""
    if not isinstance(raw, dict):
        raise ClvError(f"{origin}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ClvError(one_line(err, origin, _describe)) from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides; values are parsed as YAML scalars (``39`` -> int)."""
    out = dict(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ClvError(f"--set {excerpt(item)}: expected dotted.key=value, e.g. --set clv.horizon=52")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            node[part] = child
            node = child
        try:
            node[parts[-1]] = parse_yaml(value, f"--set {key}") if value else None
        except yaml.YAMLError:  # plain text YAML cannot read as a scalar, e.g. %Y%m%d: keep it as text
            node[parts[-1]] = value
    return out


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config with safe loading, apply overrides and validate it."""
    path = Path(path)
    raw = read_yaml(path, f"config file {path} not found; pass the path to a YAML config such as configs/cdnow.yaml")
    return parse_config(apply_overrides(raw or {}, overrides or []), origin=str(path))


# --- YAML, bounded ----------------------------------------------------------------------------

_ECHO = reprlib.Repr()
# Bounds on the work of showing a value at all (a 1 MB string, a list of 100,000 items), before
# the excerpt is cut to MAX_ECHO characters.
_ECHO.maxstring = _ECHO.maxother = _ECHO.maxlong = MAX_ECHO + 2
_ECHO.maxlist = _ECHO.maxtuple = _ECHO.maxdict = _ECHO.maxset = 12
_ECHO.maxlevel = 4


def excerpt(value: Any, limit: int = MAX_ECHO) -> str:
    """``repr(value)`` cut to at most ``limit`` characters (and ``…``), whatever the value's size.

    Every value a message echoes from a user's file goes through here: a 100 MB string or a
    deeply nested list must not become a 100 MB line on stderr, nor take minutes to render.
    """
    shown = _ECHO.repr(value) if isinstance(value, (str, list, tuple, dict, set)) else repr(value)
    return cut(shown, limit)


def cut(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` on one line, at most ``limit`` characters (and ``…`` when cut)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True)
class Problem:
    """The first problem of a pydantic :class:`~pydantic.ValidationError`, as :func:`one_line` hands it on."""

    #: Where: the keys from the top of the validated mapping (a caller's prefix first).
    loc: tuple[Any, ...]
    #: pydantic's error type, e.g. ``missing``, ``extra_forbidden``, ``int_parsing``, ``value_error``.
    kind: str
    #: pydantic's message, without the ``Value error, `` it puts before a validator's own.
    message: str
    #: The value refused (the user's: show it through :func:`excerpt` only).
    given: Any
    #: pydantic's context (a bound, the validator's exception).
    context: dict[str, Any]
    #: How many more problems pydantic found.
    others: int

    @property
    def where(self) -> str:
        """``loc`` as a dotted key, e.g. ``clv.margin``; empty for a rule across keys."""
        return ".".join(str(part) for part in self.loc)


def one_line(
    error: ValidationError, origin: str, describe: Callable[[Problem], str], *, prefix: tuple[str, ...] = ()
) -> str:
    """A pydantic error as one line: ``"<origin>: <what describe says about the first problem>"``.

    The one translation of pydantic's multi-line report, used for the config
    (:func:`parse_config`), the model document (:func:`clvmodel.document.validate`) and the CAC
    config (:func:`clvmodel.budget.cac_config.parse_cac_config`). Each caller's ``describe`` words
    the problem for its readers — a config key with an example, a document field and the advice
    to retrain, a channel with its hint — since those differ; taking the error apart and keeping
    the result on one line is done here.

    Parameters
    ----------
    error
        pydantic's error; only its first problem is described (``others`` counts the rest).
    origin
        What was validated: a file name, ``config``, a model directory.
    describe
        Words a :class:`Problem`; its text follows ``origin`` and ``": "``.
    prefix
        Keys to put before pydantic's location (a section validated on its own, e.g. ``("config",)``).
    """
    errors = error.errors(include_url=False)
    first = errors[0]
    problem = Problem(
        loc=(*prefix, *tuple(first.get("loc", ()))),
        kind=first.get("type", ""),
        message=str(first.get("msg", "")).removeprefix("Value error, "),
        given=first.get("input"),
        context=dict(first.get("ctx") or {}),
        others=len(errors) - 1,
    )
    return f"{origin}: {describe(problem)}".replace("\n", " ")


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing what a config never needs and an attacker would use.

    * aliases (``*name``): with anchors, a few hundred bytes expand to billions of nodes (the
      "billion laughs"); PyYAML shares them while parsing, but anything that walks the result
      (validation, ``repr`` in a message, JSON) expands them. Refused outright: a config is
      short enough to write each value out.
    * nesting deeper than :data:`MAX_YAML_DEPTH`: PyYAML composes recursively, so 200,000 ``[``
      would end in a RecursionError.
    * duplicate keys in one mapping: PyYAML keeps the last silently, so an edit lower in a file
      quietly wins over the value the reader sees first.
    """

    origin = "YAML"

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def _refuse(self, mark: Any, what: str) -> ClvError:
        return ClvError(f"{self.origin}: line {mark.line + 1}: {what}")

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102 - PyYAML's hook
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise self._refuse(
                event.start_mark,
                f"YAML alias *{cut(event.anchor, 40)} is not allowed (anchors and aliases can expand "
                "without bound); write the value out where it is used",
            )
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise self._refuse(
                    self.peek_event().start_mark,
                    f"nested more than {MAX_YAML_DEPTH} levels deep; a clvmodel YAML file needs 3 or 4",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:  # noqa: D102 - PyYAML's hook
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # unhashable: SafeConstructor refuses it below with its own words
                    continue
                if duplicate:
                    raise self._refuse(
                        key_node.start_mark,
                        f"key {excerpt(key, 60)} appears twice in the same mapping (YAML keeps only the last); "
                        "remove one of them",
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, origin: str = "YAML") -> Any:
    """Parse YAML text safely and within bounds (see :class:`_BoundedLoader`).

    Raises
    ------
    ClvError
        An alias, nesting too deep, or a duplicate key, naming ``origin`` and the line.
    yaml.YAMLError
        Text that is not YAML (:func:`read_yaml` turns it into one line).
    """
    loader = _BoundedLoader(text)
    loader.origin = origin
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml(path: str | Path, not_found: str | None = None) -> Any:
    """Read a YAML file (a config, a CAC file) safely, within bounds, or refuse it in one line.

    The one YAML reader of clvmodel: a file larger than :data:`MAX_YAML_BYTES`, not UTF-8, not
    valid YAML, or using what :class:`_BoundedLoader` refuses (aliases, deep nesting, duplicate
    keys) is a :class:`ClvError` naming the file (and the line where there is one).

    Parameters
    ----------
    path
        The file.
    not_found
        The message when there is no such file (default: ``"<path> not found; check the path"``).
    """
    path = Path(path)
    if not path.is_file():
        raise ClvError(not_found or f"{path} not found; check the path")
    try:
        # Read one byte past the limit, never the whole file: /dev/zero or a 10 GB file stops here.
        with open(path, "rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except OSError as err:
        raise ClvError(f"cannot read {path}: {err.strerror or err}; check the path") from None
    if len(data) > MAX_YAML_BYTES:
        raise ClvError(
            f"{path} is larger than {MAX_YAML_BYTES:,} bytes, far more than a clvmodel YAML file needs (a few KB); "
            "check that it is the file you meant"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ClvError(
            f"{path} is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); re-save it as UTF-8"
        ) from None
    try:
        return parse_yaml(text, str(path))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        at = f"line {mark.line + 1}: " if mark is not None else ""
        raise ClvError(f"{path}: not valid YAML ({at}{cut(problem, 120)}); check the indentation and quoting") from None


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys, e.g. for MLflow params (``clv.horizon``)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
