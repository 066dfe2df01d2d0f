"""CLV vs CAC: LTV:CAC by acquisition channel, the 3:1 rule, payback, and budget allocation.

This module is the library side of ``clvmodel budget``. It takes a scores table (one row per
customer, as written by ``clvmodel score``: ``customer_id``, ``predicted_clv``, ``p_alive``,
``segment`` and optionally ``channel``), a CAC config (YAML, see below), and answers four
questions:

1. *Which channels bring customers worth more than they cost?*  :func:`channel_table` computes,
   per channel, ``ltv_cac = margin * mean_clv / cac`` and the largest CAC that still meets the
   target ratio, ``max_allowable_cac = margin * mean_clv / target_ratio``.
2. *How long until an acquired customer pays back its CAC?*  ``payback_periods`` in
   :func:`channel_table`.
3. *How should the acquisition budget be split?*  :func:`allocate` maximises expected CLV acquired
   minus spend under each channel's response curve.
4. *Where should retention money go?*  :func:`segment_table`.

:func:`run_budget` runs all of it and returns a :class:`BudgetResult`; :func:`format_report` and
:func:`ltv_cac_chart` render it. Nothing here writes files: the CLI does.

CAC config (YAML)
-----------------
Every key, with its default::

    target_ratio: 3.0        # LTV:CAC a channel must reach to be "grow" (the 3:1 rule); >= 1
    margin: 1.0              # share of predicted_clv that is margin, in (0, 1]; 1.0 when the scores
                             # are already margin, e.g. 0.3 when they are revenue at a 30% margin
    budget: 0                # total acquisition budget to allocate across channels, >= 0
    horizon: null            # periods (the model's time unit) that predicted_clv covers, e.g. 39;
                             # used for payback when the caller passes neither horizon nor
                             # period_values
    retention_budget: 0      # optional retention money to split across segments, >= 0
    retention_weights:       # optional per-segment multipliers of CLV at risk, >= 0; keys you
      VIP: 1.0               # leave out keep these defaults, other segment names may be added
      high: 1.0
      medium: 1.0
      low: 1.0
      at_risk: 1.0
      lost: 0.0
    channels:                # required, at least one; a name may not be "unknown" (reserved)
      search:
        cac: 40.0            # cost per acquired customer, > 0 ...
        min_spend: 0         # spend the allocation must give this channel (contracts), >= 0
        max_spend: 60000     # cap on this channel's spend; null = only the budget caps it
        response:            # optional diminishing returns: customers = k * spend ** beta
          k: 2.5             # > 0; may be left out when spend + customers are given (calibrated)
          beta: 0.8          # in (0, 1]; 1 is linear
      social:
        spend: 20000         # ... or last period's spend and customers acquired:
        customers: 800       #     CAC = spend / customers (both > 0)

A channel gives exactly one of ``cac`` or ``spend`` + ``customers``. Without ``response`` a
channel is linear at its CAC (customers = spend / cac). With ``response`` and no ``k``, ``k`` is
calibrated so the curve passes through the observed point: ``k = customers / spend ** beta``.
The ``cac`` column of the reports is always the observed (average) CAC; the response curve is
used only by the allocation.

Rules
-----
Unknown channel
    Customers with no channel (missing column value, no row in the customers table) get the
    channel ``unknown``. ``unknown`` needs no CAC entry: it is *reported* (customers, mean and
    median CLV) so nothing silently disappears, but it has no CAC, no ratio, verdict ``n/a``,
    and receives no budget. Any *other* channel in the scores without a CAC entry is an error.
Verdict
    ``grow`` when ``ltv_cac >= target_ratio`` and the CAC is paid back within the horizon;
    ``hold`` when ``1 <= ltv_cac`` but the target or the payback is missed; ``cut`` when
    ``ltv_cac < 1`` (every customer loses money). ``n/a`` for ``unknown`` and ``no data`` for a
    configured channel with no customers in the scores. The verdict is about the *average*
    customer at the current CAC; the allocation's ``marginal_ltv_cac`` says what the *next*
    dollar buys, which is what decides where more money should go.
Spending stop
    The allocation maximises expected CLV acquired (on margin) minus spend. A dollar is worth
    spending only while its marginal LTV:CAC is at least 1, so the allocation may leave part of
    the budget unspent; ``min_spend`` is honoured even where it loses money (and a warning says
    so). At the optimum every channel strictly inside its bounds has the same marginal LTV:CAC:
    1 when the budget does not bind, a common ``1 + lambda > 1`` when it does.
Retention share
    Per segment, CLV at risk = sum of ``predicted_clv * (1 - p_alive)``: the expected value of
    customers that the model thinks may already have left, i.e. the exposure a retention
    action protects. Share = weight * CLV at risk / sum over segments of the same. With equal
    efficacy the expected loss avoided is proportional to CLV at risk, so money follows it; the
    weights stand for relative efficacy. ``lost`` defaults to 0 (winning back churned customers
    is a reactivation budget, not retention). VIPs are protected by weight of their large CLV:
    even a small churn probability on them is a large CLV at risk.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from scipy.optimize import brentq, minimize

from clvmodel.errors import ClvError

__all__ = [
    "UNKNOWN",
    "SEGMENTS",
    "DEFAULT_RETENTION_WEIGHTS",
    "SYNTHETIC_CHANNEL_SHARES",
    "ResponseConfig",
    "ChannelConfig",
    "CacConfig",
    "BudgetResult",
    "load_cac_config",
    "parse_cac_config",
    "attach_channels",
    "channel_table",
    "allocate",
    "segment_table",
    "run_budget",
    "format_report",
    "ltv_cac_chart",
    "synthetic_channels",
]

UNKNOWN = "unknown"
"""Channel of customers without one: reported, never allocated, needs no CAC entry."""

SEGMENTS: tuple[str, ...] = ("VIP", "high", "medium", "low", "at_risk", "lost")
"""Segments written by ``clvmodel score``, in report order."""

DEFAULT_RETENTION_WEIGHTS: dict[str, float] = {
    "VIP": 1.0,
    "high": 1.0,
    "medium": 1.0,
    "low": 1.0,
    "at_risk": 1.0,
    "lost": 0.0,
}

SYNTHETIC_CHANNEL_SHARES: dict[str, float] = {
    "search": 0.40,
    "social": 0.25,
    "email": 0.20,
    "affiliate": 0.15,
}
"""SYNTHETIC channel mix used by :func:`synthetic_channels` for the CDNOW demo."""

# Relative tolerance for "at a bound" / "budget spent" / "covers CAC" comparisons: far above
# float noise, far below anything a reader of the report would notice.
_RTOL = 1e-7
# Share of the budget within which an allocation counts as at its bound (and is snapped to it):
# $0.10 of a $100,000 budget.
_SNAP = 1e-6


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


def _num(x: float) -> str:
    """Format a number for a message: ``1000`` not ``1000.0``, ``0.25`` not ``2.5e-01``."""
    return f"{float(x):.15g}"


class ResponseConfig(BaseModel):
    """Diminishing-returns curve of one channel: ``customers = k * spend ** beta``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    k: float | None = Field(default=None, gt=0)
    beta: float

    @field_validator("beta")
    @classmethod
    def _beta_in_unit_interval(cls, v: float) -> float:
        if not 0.0 < v <= 1.0:
            raise ValueError(
                f"must be in (0, 1] (got {_num(v)}); use 1 for a linear channel or a value "
                "below 1 for diminishing returns"
            )
        return v


class ChannelConfig(BaseModel):
    """One acquisition channel: its observed CAC, spend bounds and optional response curve."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    cac: float | None = Field(default=None, gt=0)
    spend: float | None = Field(default=None, gt=0)
    customers: float | None = Field(default=None, gt=0)
    min_spend: float = Field(default=0.0, ge=0)
    max_spend: float | None = Field(default=None, ge=0)
    response: ResponseConfig | None = None

    @model_validator(mode="after")
    def _one_cac_source(self) -> ChannelConfig:
        has_cac = self.cac is not None
        has_spend = self.spend is not None or self.customers is not None
        if has_cac and has_spend:
            raise ValueError(
                "give either cac or spend+customers, not both; remove one of them"
            )
        if not has_cac and not has_spend:
            raise ValueError(
                "no CAC; set cac, or spend and customers (CAC = spend / customers)"
            )
        if has_spend and (self.spend is None or self.customers is None):
            missing = "customers" if self.customers is None else "spend"
            raise ValueError(f"spend and customers go together; add {missing}")
        if self.max_spend is not None and self.min_spend > self.max_spend:
            raise ValueError(
                f"min_spend {_num(self.min_spend)} is above max_spend {_num(self.max_spend)}; "
                "lower min_spend or raise max_spend"
            )
        if self.response is not None and self.response.k is None and self.spend is None:
            raise ValueError(
                "response.k is required when the channel gives cac; add response.k or give "
                "spend and customers so k can be calibrated"
            )
        return self

    @property
    def observed_cac(self) -> float:
        """Average CAC: ``cac``, or ``spend / customers``."""
        if self.cac is not None:
            return float(self.cac)
        assert self.spend is not None and self.customers is not None  # validated above
        return float(self.spend) / float(self.customers)

    def curve(self) -> tuple[float, float]:
        """Response curve ``(k, beta)`` with ``customers = k * spend ** beta``.

        Linear channels are ``(1 / cac, 1)``; a response without ``k`` is calibrated through the
        observed point, ``k = customers / spend ** beta``.
        """
        if self.response is None:
            return 1.0 / self.observed_cac, 1.0
        beta = float(self.response.beta)
        if self.response.k is not None:
            return float(self.response.k), beta
        assert self.spend is not None and self.customers is not None  # validated above
        return float(self.customers) / float(self.spend) ** beta, beta


class CacConfig(BaseModel):
    """CLV-vs-CAC settings; every key is documented in the module docstring."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    target_ratio: float = Field(default=3.0, ge=1)
    margin: float = Field(default=1.0, gt=0, le=1)
    budget: float = Field(default=0.0, ge=0)
    horizon: int | None = Field(default=None, ge=1)
    retention_budget: float = Field(default=0.0, ge=0)
    retention_weights: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: dict(DEFAULT_RETENTION_WEIGHTS)
    )
    channels: dict[str, ChannelConfig] = Field(min_length=1)

    @field_validator("retention_weights")
    @classmethod
    def _merge_weights(cls, v: dict[str, float]) -> dict[str, float]:
        # A partial block overrides only the segments it names.
        return {**DEFAULT_RETENTION_WEIGHTS, **v}

    @field_validator("channels")
    @classmethod
    def _no_reserved_name(cls, v: dict[str, ChannelConfig]) -> dict[str, ChannelConfig]:
        if UNKNOWN in v:
            raise ValueError(
                f"{UNKNOWN!r} is reserved for customers without a channel (reported, never "
                "allocated); rename that channel"
            )
        return v

    @model_validator(mode="after")
    def _budget_covers_minimums(self) -> CacConfig:
        floor = sum(c.min_spend for c in self.channels.values())
        if self.budget < floor:
            raise ValueError(
                f"infeasible: budget {_num(self.budget)} is below the channels' minimum spend "
                f"{_num(floor)}; raise budget or lower min_spend"
            )
        return self


# How to fix a bad value, by key: the generic "change the value" helps nobody.
_HINTS: dict[str, str] = {
    "cac": "CAC is a cost per acquired customer; set a positive number",
    "spend": "CAC = spend / customers; set a positive spend",
    "customers": "CAC = spend / customers; set a positive number of customers",
    "margin": "margin is the share of predicted_clv kept, e.g. 0.3 for revenue at a 30% margin",
    "target_ratio": "a ratio below 1 loses money on every customer; the usual rule is 3",
    "budget": "use 0 or a positive amount",
    "retention_budget": "use 0 or a positive amount",
    "min_spend": "use 0 or a positive amount",
    "max_spend": "use a positive amount, or leave it out for no cap",
    "horizon": "use a whole number of periods, e.g. 39 (weeks)",
    "k": "set a positive number, or leave k out and give spend + customers to calibrate it",
    "channels": "add at least one channel with its CAC",
    "retention_weights": "a weight multiplies a segment's CLV at risk; use 0 or more",
}


# Allowed keys per nesting level, for the "unknown key" message.
def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    if len(loc) >= 3 and loc[0] == "channels" and loc[2] == "response":
        model: type[BaseModel] = ResponseConfig
    elif len(loc) >= 2 and loc[0] == "channels":
        model = ChannelConfig
    else:
        model = CacConfig
    return list(model.model_fields)


def _one_line(err: ValidationError, source: str) -> str:
    """Turn pydantic's multi-line report into one line: where, what, and how to fix it."""
    errors = err.errors(include_url=False)
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    where = ".".join(str(p) for p in loc)
    kind = first.get("type", "")
    ctx = first.get("ctx") or {}
    got = first.get("input")
    keys = [str(loc[-1]), str(loc[0])] if loc else []
    hint = next((_HINTS[k] for k in keys if k in _HINTS), "change the value")
    if "[key]" in loc:
        where = ".".join(str(p) for p in loc if p != "[key]")
        return f"{source}: {where}: names must be text (got {got!r}); quote the name"
    if kind == "missing":
        text = "required key is missing; add it" + (
            ", e.g. channels: {search: {cac: 40}} (each acquisition channel with its CAC)" if keys and keys[0] == "channels" else ""
        )
    elif kind == "extra_forbidden":
        text = f"unknown key; remove it (allowed: {', '.join(_allowed_keys(loc[:-1]))})"
    elif kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
              "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()))
        text = f"must be {op} {_num(bound)} (got {got!r}); {hint}"
    elif kind == "too_short":
        text = f"is empty; {hint if hint != 'change the value' else 'add at least one entry'}"
    elif kind == "finite_number":
        text = f"must be a finite number (got {got!r}); write a plain number"
    elif kind.startswith("int_"):
        text = f"expected a whole number (got {got!r}); {hint}"
    elif kind.startswith("float_"):
        text = f"expected a number (got {got!r}); write a plain number such as 40"
    elif kind in {"dict_type", "model_type", "model_attributes_type"}:
        text = f"expected a mapping of keys (got {type(got).__name__}); see clvmodel.budget"
    elif kind == "value_error":
        text = str(ctx.get("error", first.get("msg", "")))
    else:
        text = f"{first.get('msg', 'invalid')}; {hint}"
    line = f"{where}: {text}" if where else text
    more = len(errors) - 1
    if more:
        line += f" (and {more} more problem{'s' if more > 1 else ''})"
    return f"{source}: {line}".replace("\n", " ")


def parse_cac_config(data: Mapping[str, Any] | None, source: str = "CAC config") -> CacConfig:
    """Validate a mapping (e.g. parsed YAML) into a :class:`CacConfig`.

    Raises
    ------
    ClvError
        One line naming the key and the fix, for any validation problem.
    """
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ClvError(f"{source}: is {kind}, expected a mapping with a channels: block")
    try:
        return CacConfig.model_validate(dict(data))
    except ValidationError as err:
        raise ClvError(_one_line(err, source)) from None


def load_cac_config(path: str | Path) -> CacConfig:
    """Read a CAC config YAML file (``yaml.safe_load``) and validate it.

    Raises
    ------
    ClvError
        File missing, YAML syntax error, or any validation problem (one line each).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClvError(f"CAC config not found: {p}; check the path") from None
    except OSError as exc:
        raise ClvError(f"cannot read CAC config {p}: {exc.strerror}; check the path") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ClvError(f"{p}: YAML syntax error{at} ({problem}); fix the YAML") from None
    return parse_cac_config(data, source=str(p))


# --------------------------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------------------------


def _id_strings(ids: pd.Series) -> pd.Series:
    """Customer ids as text, so ``42`` (int) and ``"42"`` join; ``42.0`` (a float column that
    held NaN somewhere upstream) is read as ``"42"`` too."""
    if pd.api.types.is_float_dtype(ids) and ids.notna().all() and bool((ids % 1 == 0).all()):
        ids = ids.astype("int64")
    return ids.astype(object).map(str)


def _channel_names(values: pd.Series) -> pd.Series:
    """Clean channel labels; missing or blank become :data:`UNKNOWN`."""

    def clean(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return UNKNOWN
        s = str(v).strip()
        return s if s else UNKNOWN

    return values.astype(object).map(clean)


def _require_columns(df: pd.DataFrame, columns: Iterable[str], what: str, fix: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns[:12]))
        raise ClvError(f"{what} has no column {', '.join(missing)} (columns: {have}); {fix}")


def attach_channels(
    scores: pd.DataFrame, customers: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return a copy of ``scores`` with a clean ``channel`` column, one row per input row.

    The channel comes from ``customers`` (columns ``customer_id``, ``channel``; joined on
    ``customer_id`` compared as strings) when given, which then replaces any ``channel`` column
    of ``scores``; otherwise from the ``channel`` column of ``scores``. Customers with no channel
    become ``"unknown"``; no row is ever dropped or duplicated.

    Raises
    ------
    ClvError
        Missing ``customer_id``/``channel`` columns, duplicate ids in ``customers``, or a
        customers table that matches none of the scores' ids.
    """
    out = scores.copy()
    if customers is None:
        if "channel" in out.columns:
            out["channel"] = _channel_names(out["channel"]).to_numpy()
        else:
            out["channel"] = UNKNOWN
        return out
    _require_columns(out, ["customer_id"], "scores", "re-run clvmodel score")
    _require_columns(
        customers, ["customer_id", "channel"], "customers table",
        "give a table with columns customer_id, channel",
    )
    table_ids = _id_strings(customers["customer_id"])
    dup = table_ids[table_ids.duplicated(keep=False)]
    if len(dup):
        raise ClvError(
            f"customers table has {dup.nunique()} duplicate customer_id value(s) (e.g. "
            f"{dup.iloc[0]!r}); keep one channel per customer"
        )
    lookup = pd.Series(_channel_names(customers["channel"]).to_numpy(), index=table_ids.to_numpy())
    score_ids = _id_strings(out["customer_id"])
    # Series.map on a unique index is a left join that cannot add or drop rows.
    mapped = score_ids.map(lookup)
    if len(customers) and len(out) and mapped.isna().all():
        raise ClvError(
            f"none of the {len(out)} scores' customer ids appear in the customers table (e.g. "
            f"scores {score_ids.iloc[0]!r} vs table {table_ids.iloc[0]!r}); use the same ids"
        )
    out["channel"] = mapped.fillna(UNKNOWN).to_numpy()
    assert len(out) == len(scores), "attach_channels changed the row count"
    return out


def _check_scores(scores: pd.DataFrame) -> None:
    _require_columns(
        scores, ["predicted_clv"], "scores",
        "pass the output of clvmodel score (it has predicted_clv)",
    )
    clv = pd.to_numeric(scores["predicted_clv"], errors="coerce")
    bad = clv.isna() | ~np.isfinite(clv.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        raise ClvError(
            f"predicted_clv has {int(bad.sum())} missing or non-numeric value(s) (row "
            f"{int(np.flatnonzero(bad.to_numpy())[0])}); re-run clvmodel score or drop them"
        )


def _check_channels_configured(channels: Iterable[str], config: CacConfig, *, per_customer: bool = False) -> None:
    """Every channel but ``unknown`` has a CAC entry; ``per_customer``: ``channels`` has one value per
    customer, so the message can say how many customers each missing channel holds."""
    names = [str(c) for c in channels]
    missing = sorted({c for c in names if c != UNKNOWN and c not in config.channels})
    if missing:
        counts = {c: names.count(c) for c in missing}
        shown = [f"{c} ({counts[c]:,} customer{'s' if counts[c] != 1 else ''})" if per_customer else c for c in missing]
        configured = ", ".join(config.channels)
        raise ClvError(
            f"channel(s) in the scores without a CAC entry: {', '.join(shown)}; add them under "
            f"channels: in the CAC config, which has {configured} (customers with no channel are {UNKNOWN!r} and "
            "need none)"
        )


def _period_matrix(period_values: pd.DataFrame, ids: pd.Series) -> np.ndarray:
    """``period_values`` as an ``(n_customers, H)`` array aligned to ``ids``, periods 1..H."""
    try:
        periods = [int(str(c)) for c in period_values.columns]
    except ValueError:
        raise ClvError(
            f"period_values columns must be periods 1..H (got {list(period_values.columns)[:5]}); "
            "name them 1, 2, ..."
        ) from None
    if sorted(periods) != list(range(1, len(periods) + 1)):
        raise ClvError(
            f"period_values columns must be 1..H without gaps (got {sorted(periods)[:5]}...); "
            "name them 1, 2, ..."
        )
    frame = period_values.copy()
    frame.columns = periods
    frame = frame[sorted(periods)]
    frame.index = _id_strings(pd.Series(frame.index)).to_numpy()
    if frame.index.duplicated().any():
        raise ClvError("period_values has duplicate customer ids in its index; keep one row each")
    key = _id_strings(ids)
    absent = ~key.isin(frame.index)
    if absent.any():
        raise ClvError(
            f"period_values is missing {int(absent.sum())} customer(s) of the scores (e.g. "
            f"{key[absent].iloc[0]!r}); compute period values for every scored customer"
        )
    values = frame.loc[key.to_numpy()].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ClvError("period_values has missing or infinite values; fill them (0 if none)")
    return values


def _payback(cumulative: np.ndarray, cac: float) -> float:
    """First 1-based period whose cumulative margin covers ``cac``; NaN if none does."""
    covered = np.flatnonzero(cumulative >= cac * (1.0 - _RTOL))
    return float(covered[0] + 1) if covered.size else float("nan")


def _meets(ratio: float | pd.Series, threshold: float) -> Any:
    """``ratio >= threshold`` forgiving float noise: 0.3 * 30 / 3 is 2.9999999999999996."""
    return ratio >= threshold * (1.0 - _RTOL)


def _verdict(ratio: float, payback: float, target: float) -> str:
    if not np.isfinite(ratio):
        return "n/a"
    if not _meets(ratio, 1.0):
        return "cut"
    if _meets(ratio, target) and np.isfinite(payback):
        return "grow"
    return "hold"


def channel_table(
    scores_with_channels: pd.DataFrame,
    config: CacConfig,
    period_values: pd.DataFrame | None = None,
    horizon: int | None = None,
) -> pd.DataFrame:
    """LTV:CAC, maximum allowable CAC, payback and verdict per channel.

    For channel ``c`` with customers ``i in c``::

        mean_clv_c          = mean_i predicted_clv_i          (scores' units: revenue or margin)
        ltv_cac_c           = margin * mean_clv_c / cac_c
        max_allowable_cac_c = margin * mean_clv_c / target_ratio
        payback_periods_c   = min { p : margin * sum_{q<=p} mean_i v_iq >= cac_c }   (1-based)

    where ``v_iq`` is customer ``i``'s expected (discounted) value in period ``q``, taken from
    ``period_values`` (index ``customer_id``, columns ``1..H``, revenue: margin is applied here).
    Without ``period_values`` the approximation ``v_iq = predicted_clv_i / H`` spreads CLV evenly
    over ``H = horizon`` periods (argument, else ``config.horizon``). That is an approximation:
    discounting and churn make real per-period value decline, so the even spread tends to
    overstate the payback period (errs on the cautious side). Payback is NaN when the CAC is not
    covered within the H periods.

    Rows: every configured channel (config order, ``customers == 0`` and verdict ``no data`` when
    absent from the scores), then ``unknown`` if any customer has no channel (reported only:
    ``cac``, ratios and payback are NaN, verdict ``n/a``). Verdicts: see the module docstring.

    Raises
    ------
    ClvError
        No ``channel`` or ``predicted_clv`` column, a channel without a CAC entry, no horizon,
        or malformed ``period_values``.
    """
    _check_scores(scores_with_channels)
    _require_columns(
        scores_with_channels, ["channel"], "scores",
        "call attach_channels first or pass a customers table (customer_id, channel)",
    )
    channels = _channel_names(scores_with_channels["channel"])
    _check_channels_configured(channels, config, per_customer=True)
    clv = pd.to_numeric(scores_with_channels["predicted_clv"]).to_numpy(dtype=float)

    per_period: np.ndarray | None = None
    periods = 0
    if period_values is not None:
        _require_columns(scores_with_channels, ["customer_id"], "scores", "re-run clvmodel score")
        per_period = _period_matrix(period_values, scores_with_channels["customer_id"])
    else:
        h = horizon if horizon is not None else config.horizon
        if h is None or int(h) < 1:
            raise ClvError(
                "payback needs a horizon: pass horizon (periods covered by predicted_clv, e.g. "
                "39) or period_values, or set horizon in the CAC config"
            )
        periods = int(h)

    names = list(config.channels) + ([UNKNOWN] if (channels == UNKNOWN).any() else [])
    rows = []
    for name in names:
        mask = (channels == name).to_numpy()
        n = int(mask.sum())
        mean_clv = float(clv[mask].mean()) if n else float("nan")
        median_clv = float(np.median(clv[mask])) if n else float("nan")
        cac = config.channels[name].observed_cac if name in config.channels else float("nan")
        ratio = config.margin * mean_clv / cac if n else float("nan")
        if n and np.isfinite(cac):
            # Mean value per period of the channel's customers; without period_values, the even
            # spread mean_clv / H in each of the H periods (an approximation, see above).
            mean_path = (
                per_period[mask].mean(axis=0) if per_period is not None
                else np.full(periods, mean_clv / periods)
            )
            payback = _payback(config.margin * np.cumsum(mean_path), cac)
        else:
            payback = float("nan")
        verdict = "no data" if n == 0 else _verdict(ratio, payback, config.target_ratio)
        rows.append({
            "channel": name,
            "customers": n,
            "mean_clv": mean_clv,
            "median_clv": median_clv,
            "total_clv": float(clv[mask].sum()),
            "cac": cac,
            "ltv_cac": ratio,
            "max_allowable_cac": config.margin * mean_clv / config.target_ratio
            if name != UNKNOWN else float("nan"),
            "payback_periods": payback,
            "verdict": verdict,
        })
    table = pd.DataFrame(rows)
    table["customers"] = table["customers"].astype("int64")
    return table


# --------------------------------------------------------------------------------------------
# Allocation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    """Allocation problem in spend units; arrays are per channel, in ``names`` order."""

    names: list[str]
    value: np.ndarray  # margin * mean_clv: value of one acquired customer
    k: np.ndarray
    beta: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    budget: float

    def customers(self, spend: np.ndarray) -> np.ndarray:
        """customers_c = k_c * spend_c ** beta_c."""
        return self.k * np.power(np.maximum(spend, 0.0), self.beta)

    def marginal(self, spend: np.ndarray) -> np.ndarray:
        """Marginal LTV:CAC = value_c * k_c * beta_c * spend_c ** (beta_c - 1)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(
                self.beta >= 1.0,
                self.k,
                self.k * self.beta * np.power(np.maximum(spend, 0.0), self.beta - 1.0),
            )
        # A channel worth nothing has marginal 0, not 0 * inf at zero spend.
        return np.where(self.value > 0, self.value * slope, 0.0)


def _build_problem(channel_stats: pd.DataFrame, config: CacConfig) -> tuple[_Problem, list[str]]:
    _require_columns(
        channel_stats, ["channel", "mean_clv"], "channel_stats", "pass channel_table's output"
    )
    _check_channels_configured(channel_stats["channel"].astype(str), config)
    notes: list[str] = []
    mean = dict(zip(channel_stats["channel"].astype(str), channel_stats["mean_clv"]))
    names = list(config.channels)
    value, ks, betas, lower, upper = [], [], [], [], []
    for name in names:
        ch = config.channels[name]
        m = float(mean.get(name, float("nan")))
        if not np.isfinite(m):
            # No customers, no evidence of value: the channel gets its min_spend and nothing more.
            notes.append(f"{name}: no customers in the scores, so it gets only its min_spend")
            m = 0.0
        k, b = ch.curve()
        value.append(config.margin * max(m, 0.0))
        ks.append(k)
        betas.append(b)
        lower.append(ch.min_spend)
        upper.append(min(config.budget, ch.max_spend if ch.max_spend is not None else math.inf))
    floor = sum(lower)
    if config.budget < floor:
        raise ClvError(
            f"infeasible: budget {_num(config.budget)} is below the channels' minimum spend "
            f"{_num(floor)}; raise budget or lower min_spend"
        )
    problem = _Problem(
        names, np.array(value, float), np.array(ks, float), np.array(betas, float),
        np.array(lower, float), np.array(upper, float), float(config.budget),
    )
    return problem, notes


def _typical_spend(problem: _Problem) -> np.ndarray:
    """Per-channel spend scale for the optimiser: where a concave channel's marginal LTV:CAC
    falls to 1, ``(value * k * beta) ** (1 / (1 - beta))``, or a linear channel's cap; clipped to
    the channel's bounds and kept away from 0."""
    budget = problem.budget
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_s1 = np.log(problem.value * problem.k * problem.beta) / (1.0 - problem.beta)
        s1 = np.exp(np.minimum(log_s1, math.log(budget)))
    typical = np.where(problem.beta < 1.0, s1, problem.upper)
    typical = np.nan_to_num(typical, nan=budget, posinf=budget, neginf=0.0)
    typical = np.clip(typical, problem.lower, problem.upper)
    return np.maximum(typical, 1e-6 * budget)


def _kkt_violation(problem: _Problem, spend: np.ndarray, tol: float) -> float:
    """Largest relative violation of the optimality conditions at ``spend`` (0 = optimal).

    With ``mu = 1 + lambda`` the price of budget: channels strictly inside their bounds have
    marginal LTV:CAC ``mu``; at the lower bound ``<= mu``; at the upper bound ``>= mu``;
    ``mu >= 1``, and ``mu = 1`` when budget is left over.
    """
    movable = problem.upper > problem.lower
    if not movable.any():
        return 0.0
    m = problem.marginal(spend)
    at_lo = movable & (spend <= problem.lower + tol)
    at_hi = movable & (spend >= problem.upper - tol) & ~at_lo
    free = movable & ~at_lo & ~at_hi
    budget_left = spend.sum() < problem.budget - tol * len(spend)
    if free.any():
        mu = float(np.mean(m[free]))
    elif budget_left:
        mu = 1.0
    else:
        # Every movable channel at a bound: any mu between the two groups will do.
        inside = problem.marginal(np.minimum(problem.lower + tol, problem.upper))
        mu = max(1.0, float(inside[at_lo].max()) if at_lo.any() else 1.0)
    worst = [np.abs(m[free] - mu).max() / mu if free.any() else 0.0]
    if budget_left:
        worst.append(abs(mu - 1.0))
    worst.append(max(1.0 - mu, 0.0))
    # At a bound, judge the marginal a tolerance inside it: s**(beta-1) is infinite at s = 0, and
    # a channel whose best spend is a few cents is rightly reported at 0.
    if at_lo.any():
        inside = problem.marginal(np.minimum(problem.lower + tol, problem.upper))[at_lo]
        worst.append(max(float(inside.max()) - mu, 0.0) / mu)
    if at_hi.any():
        inside = problem.marginal(np.maximum(problem.upper - tol, problem.lower))[at_hi]
        worst.append(max(mu - float(inside.min()), 0.0) / mu)
    return float(max(worst))


def _slsqp(problem: _Problem, unit: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, Any]:
    """One SLSQP run with spend measured in ``unit`` (per channel) and analytic gradients."""
    budget = problem.budget
    scale = float(unit.sum())
    lo, hi = problem.lower / unit, problem.upper / unit
    # d/ds s**beta is infinite at s = 0 when beta < 1: keep SLSQP a hair away from it.
    lo_opt = np.where((problem.beta < 1.0) & (lo < 1e-9), np.minimum(1e-9, hi), lo)

    def negative_net(x: np.ndarray) -> tuple[float, np.ndarray]:
        s = x * unit
        net = float((problem.value * problem.customers(s)).sum() - s.sum())
        return -net / scale, -(problem.marginal(s) - 1.0) * unit / scale

    res = minimize(
        negative_net, np.clip(start / unit, lo_opt, hi), jac=True, method="SLSQP",
        bounds=list(zip(lo_opt, hi)),
        constraints=[{"type": "ineq", "fun": lambda x: (budget - x @ unit) / budget,
                      "jac": lambda x: -unit / budget}],
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    return np.clip(res.x * unit, problem.lower, problem.upper), res


def _net(problem: _Problem, spend: np.ndarray) -> float:
    return float((problem.value * problem.customers(spend)).sum() - spend.sum())


def _polish(problem: _Problem, spend: np.ndarray, tol: float) -> np.ndarray | None:
    """Solve the KKT equations exactly on the active set SLSQP found; None if that fails.

    SLSQP stops once the objective stops improving, which leaves channels worth a few dollars
    loosely placed (their spend barely moves the objective). Holding the channels at a bound
    fixed, each free concave channel's optimum given the budget price ``mu`` is closed-form,
    ``s_c(mu) = (value_c * k_c * beta_c / mu) ** (1 / (1 - beta_c))``, and ``mu`` is 1 (budget
    left over), a free linear channel's ``value * k`` (it absorbs the remainder), or the root of
    ``sum_c s_c(mu) = remaining budget`` (brentq).
    """
    budget, lower, upper = problem.budget, problem.lower, problem.upper
    movable = upper > lower
    at_bound = movable & ((spend <= lower + tol) | (spend >= upper - tol))
    free = movable & ~at_bound
    concave = free & (problem.beta < 1.0)
    linear = free & (problem.beta >= 1.0)
    if not concave.any():
        return None
    with np.errstate(divide="ignore"):
        log_vkb = np.log(problem.value * problem.k * problem.beta)[concave]
    gamma = 1.0 / (1.0 - problem.beta[concave])

    def s_of(mu: float) -> np.ndarray:
        return np.clip(np.exp((log_vkb - math.log(mu)) * gamma), lower[concave], upper[concave])

    binding = spend.sum() >= budget - tol * len(spend)
    room = budget - spend[~concave].sum()
    if not binding:
        mu = 1.0
    elif linear.any():
        mu = float(np.mean((problem.value * problem.k)[linear]))
    elif s_of(1.0).sum() <= room:
        mu = 1.0
    else:
        top = 2.0
        while s_of(top).sum() > room:
            top *= 2.0
            if top > 1e300:
                return None
        mu = brentq(lambda m: s_of(m).sum() - room, 1.0, top, xtol=1e-300, rtol=1e-15)
    new = spend.copy()
    new[concave] = s_of(mu)
    if linear.any() and binding:
        # The free linear channels take what is left, in their current proportions.
        left = budget - new[~linear].sum()
        new[linear] = left * spend[linear] / spend[linear].sum()
    feasible = (new >= lower - tol).all() and (new <= upper + tol).all()
    if not feasible or new.sum() > budget + tol:
        return None
    return np.clip(new, lower, upper) if _net(problem, new) >= _net(problem, spend) - tol else None


def _solve(problem: _Problem) -> np.ndarray:
    """Maximise sum_c [value_c * k_c * s_c**beta_c - s_c] s.t. sum s <= budget, lower <= s <= upper.

    SLSQP with analytic gradients, on spend measured in units of each channel's typical spend
    (:func:`_typical_spend`) so that small and large channels are resolved alike, then
    :func:`_polish`-ed on the active set it found; when the result is not optimal to 1e-6 it is
    re-solved from there in units of that result (at most twice). The objective is concave
    (beta <= 1), so a point meeting the KKT conditions is the global optimum; that is checked
    (:func:`_kkt_violation`) rather than taken on SLSQP's word.
    """
    budget = problem.budget
    lower, upper = problem.lower, problem.upper
    if budget <= 0 or np.allclose(lower, upper):
        return lower.copy()
    unit = _typical_spend(problem)
    # Start near the likely optimum, shrunk towards the minimums to fit in the budget.
    start = np.clip(unit, lower, upper)
    if start.sum() > budget:
        room = start - lower
        start = lower + room * (0.9 * (budget - lower.sum()) / room.sum())
    tol = _SNAP * budget  # dollars: a bound closer than this is "at" it
    for _ in range(3):
        raw, res = _slsqp(problem, unit, start)
        # Snap to bounds within tolerance, so "0" prints as 0 and corner solutions are exact.
        spend = np.where(raw - lower <= tol, lower, raw)
        spend = np.where(upper - spend <= tol, upper, spend)
        polished = _polish(problem, spend, tol)
        if polished is not None and _kkt_violation(problem, polished, tol) < _kkt_violation(
            problem, spend, tol
        ):
            spend = polished
        violation = _kkt_violation(problem, spend, tol)
        if violation <= 1e-6:
            break
        unit, start = np.maximum(raw, tol), raw
    # SLSQP sometimes stops with "positive directional derivative" when it is already at the
    # optimum and cannot improve in floating point: judge the point, not the message.
    if violation > 1e-4:
        raise ClvError(
            f"budget allocation did not converge: {res.message}; check the channels' response "
            "curves (k, beta) and spend bounds"
        )
    return spend


def _bound_labels(problem: _Problem, spend: np.ndarray) -> list[str]:
    tol = _SNAP * max(problem.budget, 1.0)
    labels = []
    for s, lo, hi in zip(spend, problem.lower, problem.upper):
        if abs(s - hi) <= tol and hi < problem.budget:
            labels.append("max")
        elif abs(s - lo) <= tol:
            labels.append("min")
        else:
            labels.append("none")
    return labels


def _allocate(channel_stats: pd.DataFrame, config: CacConfig) -> tuple[pd.DataFrame, list[str]]:
    problem, notes = _build_problem(channel_stats, config)
    spend = _solve(problem)
    customers = problem.customers(spend)
    # s**(beta-1) is infinite at exactly 0; a concave channel left at 0 has its optimum below the
    # snapping tolerance, so report the (finite) marginal there instead of inf.
    marginal = problem.marginal(np.maximum(spend, _SNAP * max(problem.budget, 1.0)))
    frame = pd.DataFrame({
        "channel": problem.names,
        "allocated_spend": spend,
        "expected_customers": customers,
        "expected_clv": problem.value * customers,
        "marginal_ltv_cac": marginal,
        "min_spend": problem.lower,
        "max_spend": [config.channels[n].max_spend for n in problem.names],
        "bound": _bound_labels(problem, spend),
    })
    frame["max_spend"] = frame["max_spend"].astype(float)
    frame["expected_net_value"] = frame["expected_clv"] - frame["allocated_spend"]
    for row in frame.itertuples():
        if row.allocated_spend > 0 and row.bound == "min" and row.marginal_ltv_cac < 1.0:
            notes.append(
                f"{row.channel}: min_spend {_num(row.min_spend)} is spent although its marginal "
                f"LTV:CAC is {row.marginal_ltv_cac:.2f} < 1 (it loses money); lower min_spend"
            )
    total = float(spend.sum())
    if config.budget > 0 and total < config.budget * (1.0 - _SNAP * len(spend)):
        notes.append(
            f"allocated {total:,.0f} of the {config.budget:,.0f} budget: beyond that every "
            "channel's marginal LTV:CAC is below 1 or it is at max_spend, so more spend would "
            "lose money or has nowhere to go"
        )
    return frame, notes


def allocate(channel_stats: pd.DataFrame, config: CacConfig) -> pd.DataFrame:
    """Split ``config.budget`` across the configured channels (never ``unknown``).

    Solves, with SLSQP and analytic gradients::

        max_s  sum_c [ margin * mean_clv_c * customers_c(s_c) - s_c ]
        s.t.   sum_c s_c <= budget,   min_spend_c <= s_c <= min(max_spend_c, budget)

    with ``customers_c(s) = k_c * s ** beta_c`` (linear channels: ``k = 1 / cac``, ``beta = 1``).
    The objective is expected CLV acquired minus spend, so spending stops where the marginal
    LTV:CAC drops below 1 (part of the budget may stay unspent) unless ``min_spend`` forces it.

    Returns
    -------
    DataFrame
        One row per configured channel: ``channel, allocated_spend, expected_customers,
        expected_clv`` (margin basis, ``margin * mean_clv * expected_customers``),
        ``marginal_ltv_cac`` (``margin * mean_clv * dcustomers/dspend`` at the optimum; linear
        channels ``margin * mean_clv / cac``; a concave channel left at 0 is evaluated at
        ``1e-6 * budget``, since the derivative is infinite at exactly 0), ``min_spend, max_spend``, ``bound`` (``min``,
        ``max`` or ``none`` for a channel strictly inside its bounds) and
        ``expected_net_value`` (``expected_clv - allocated_spend``). Notes for the reader
        (unspent budget, forced loss-making minimums) are in ``.attrs["warnings"]``.

    Raises
    ------
    ClvError
        Infeasible minimums, a channel without a CAC entry, or an optimiser failure (with its
        message).
    """
    frame, notes = _allocate(channel_stats, config)
    frame.attrs["warnings"] = notes
    return frame


# --------------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------------


def segment_table(scores: pd.DataFrame, config: CacConfig) -> pd.DataFrame:
    """Customers, CLV share and suggested retention budget share per segment.

    ::

        clv_at_risk_s      = sum_{i in s} predicted_clv_i * (1 - p_alive_i)
        retention_share_s  = w_s * clv_at_risk_s / sum_t w_t * clv_at_risk_t
        retention_budget_s = retention_share_s * config.retention_budget

    with ``w = config.retention_weights`` (default 1, ``lost`` 0); the rationale is in the module
    docstring. Shares are 0 when nothing is at risk. Rows follow ``VIP, high, medium, low,
    at_risk, lost``, then any other segment names sorted.

    Raises
    ------
    ClvError
        Missing ``segment``, ``predicted_clv`` or ``p_alive``, or ``p_alive`` outside [0, 1].
    """
    _check_scores(scores)
    _require_columns(scores, ["segment", "p_alive"], "scores", "re-run clvmodel score")
    p_alive = pd.to_numeric(scores["p_alive"], errors="coerce").to_numpy(dtype=float)
    if not (np.isfinite(p_alive) & (p_alive >= 0) & (p_alive <= 1)).all():
        raise ClvError("p_alive has values outside [0, 1] or missing; re-run clvmodel score")
    clv = pd.to_numeric(scores["predicted_clv"]).to_numpy(dtype=float)
    frame = pd.DataFrame({
        "segment": scores["segment"].astype(object).map(str).to_numpy(),
        "clv": clv,
        "p_alive": p_alive,
        "at_risk": clv * (1.0 - p_alive),
    })
    grouped = frame.groupby("segment", sort=False).agg(
        customers=("clv", "size"), total_clv=("clv", "sum"), mean_clv=("clv", "mean"),
        mean_p_alive=("p_alive", "mean"), clv_at_risk=("at_risk", "sum"),
    )
    order = [s for s in SEGMENTS if s in grouped.index]
    order += sorted(s for s in grouped.index if s not in SEGMENTS)
    table = grouped.loc[order].reset_index()
    table["customers"] = table["customers"].astype("int64")
    table.insert(2, "customer_share", table["customers"] / table["customers"].sum())
    total = table["total_clv"].sum()
    table.insert(4, "clv_share", table["total_clv"] / total if total != 0 else np.nan)
    weights = config.retention_weights
    table["weight"] = [float(weights.get(s, 1.0)) for s in table["segment"]]
    # Negative CLV (returns exceeding purchases) is no exposure worth protecting.
    weighted = table["weight"] * table["clv_at_risk"].clip(lower=0.0)
    denom = weighted.sum()
    table["retention_share"] = weighted / denom if denom > 0 else 0.0
    table["retention_budget"] = table["retention_share"] * config.retention_budget
    return table


# --------------------------------------------------------------------------------------------
# Orchestration and rendering
# --------------------------------------------------------------------------------------------


@dataclass
class BudgetResult:
    """Everything ``clvmodel budget`` reports.

    Attributes
    ----------
    channels
        :func:`channel_table` merged with :func:`allocate` on ``channel`` (``unknown``, when
        present, has NaN allocation columns: reported, not allocated).
    segments
        :func:`segment_table`, or an empty frame when the scores have no segment / p_alive.
    warnings
        Plain-language notes the reader must see (printed by :func:`format_report`).
    target_ratio, margin, budget, retention_budget
        From the config, for rendering.
    """

    channels: pd.DataFrame
    segments: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    target_ratio: float = 3.0
    margin: float = 1.0
    budget: float = 0.0
    retention_budget: float = 0.0

    @property
    def allocated(self) -> float:
        """Total spend allocated (excludes ``unknown``)."""
        total = float(self.channels["allocated_spend"].fillna(0.0).sum())
        # The optimiser lands within float noise of the budget; do not print "-0 unallocated".
        return self.budget if abs(total - self.budget) <= 1e-9 * max(self.budget, 1.0) else total

    def summary(self) -> dict[str, float]:
        """Headline numbers, JSON-ready."""
        ch = self.channels
        return {
            "budget": float(self.budget),
            "allocated": self.allocated,
            "unallocated": float(self.budget) - self.allocated,
            "expected_customers": float(ch["expected_customers"].fillna(0.0).sum()),
            "expected_clv": float(ch["expected_clv"].fillna(0.0).sum()),
            "expected_net_value": float(ch["expected_net_value"].fillna(0.0).sum()),
        }


def _channel_warnings(table: pd.DataFrame, config: CacConfig) -> list[str]:
    notes: list[str] = []
    known = table[(table["channel"] != UNKNOWN) & (table["customers"] > 0)]
    if len(known) and not _meets(known["ltv_cac"], config.target_ratio).any():
        best = known.loc[known["ltv_cac"].idxmax()]
        notes.append(
            f"no channel meets the target LTV:CAC of {config.target_ratio:g}:1 (best: "
            f"{best['channel']} at {best['ltv_cac']:.2f}:1); lower CACs before growing spend"
        )
    unknown = table[table["channel"] == UNKNOWN]
    if len(unknown):
        n = int(unknown["customers"].iloc[0])
        share = n / max(int(table["customers"].sum()), 1)
        notes.append(
            f"{n} customer(s) ({share:.1%}) have no channel ({UNKNOWN!r}): reported, not "
            "allocated"
        )
    return notes


def run_budget(
    scores: pd.DataFrame,
    config: CacConfig,
    customers: pd.DataFrame | None = None,
    period_values: pd.DataFrame | None = None,
    horizon: int | None = None,
) -> BudgetResult:
    """Channels, allocation, segments and warnings for one scores table.

    Steps: :func:`attach_channels` -> :func:`channel_table` -> :func:`allocate` (merged on
    ``channel``) -> :func:`segment_table`. Raises :class:`ClvError` as those do.
    """
    _check_scores(scores)
    with_channels = attach_channels(scores, customers)
    table = channel_table(with_channels, config, period_values=period_values, horizon=horizon)
    allocation, alloc_notes = _allocate(table, config)
    channels = table.merge(allocation, on="channel", how="left", validate="one_to_one")
    notes = _channel_warnings(table, config) + alloc_notes
    if {"segment", "p_alive"} <= set(scores.columns):
        segments = segment_table(scores, config)
    else:
        segments = pd.DataFrame()
        notes.append("no segment table: the scores have no segment or p_alive column")
    return BudgetResult(
        channels=channels, segments=segments, warnings=notes,
        target_ratio=config.target_ratio, margin=config.margin, budget=config.budget,
        retention_budget=config.retention_budget,
    )


def _money(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"


def _ratio(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.2f}:1"


def _plain(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:,.0f}"


def _share(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.1%}"


def format_report(result: BudgetResult) -> str:
    """A plain-text report: channels, allocation, segments, warnings."""
    ch = result.channels
    margin_note = "" if result.margin == 1.0 else f", margin {result.margin:.0%} applied"
    lines = [f"LTV:CAC by channel (target {result.target_ratio:g}:1{margin_note})"]
    cols = {
        "channel": str, "customers": _plain, "mean_clv": _money, "cac": _money,
        "ltv_cac": _ratio, "max_allowable_cac": _money, "payback_periods": _plain,
        "verdict": str,
    }
    lines.append(ch[list(cols)].to_string(index=False, formatters=cols, na_rep="-"))
    lines.append("")
    s = result.summary()
    lines.append(
        f"Budget allocation (budget {s['budget']:,.0f}; allocated {s['allocated']:,.0f}; "
        f"unallocated {s['unallocated']:,.0f})"
    )
    alloc_cols = {
        "channel": str, "allocated_spend": _plain, "expected_customers": _plain,
        "expected_clv": _plain, "marginal_ltv_cac": _ratio, "bound": str,
    }
    alloc = ch[ch["channel"] != UNKNOWN]
    lines.append(
        alloc[list(alloc_cols)].to_string(index=False, formatters=alloc_cols, na_rep="-")
    )
    lines.append(
        f"expected customers {s['expected_customers']:,.0f}; expected CLV on margin "
        f"{s['expected_clv']:,.0f}; net of spend {s['expected_net_value']:,.0f}"
    )
    if len(result.segments):
        lines.append("")
        budget_note = (
            f"; retention budget {result.retention_budget:,.0f}" if result.retention_budget else ""
        )
        lines.append(f"Segments (retention share follows CLV at risk{budget_note})")
        seg_cols = {
            "segment": str, "customers": _plain, "clv_share": _share, "mean_p_alive": _share,
            "clv_at_risk": _plain, "retention_share": _share, "retention_budget": _plain,
        }
        lines.append(
            result.segments[list(seg_cols)].to_string(index=False, formatters=seg_cols, na_rep="-")
        )
    if result.warnings:
        lines.append("")
        lines.extend(f"WARNING: {w}" for w in result.warnings)
    return "\n".join(lines)


_VERDICT_COLOURS = {"grow": "#2e7d32", "hold": "#f9a825", "cut": "#c62828"}


def ltv_cac_chart(result: BudgetResult) -> Figure:
    """Bar chart of LTV:CAC per channel, coloured by verdict, with the target and 1:1 lines.

    Built on :class:`matplotlib.figure.Figure` directly (no pyplot), so nothing is shown or kept
    in global state; call ``fig.savefig(path)`` to write it.
    """
    data = result.channels[np.isfinite(result.channels["ltv_cac"].astype(float))]
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    colours = [_VERDICT_COLOURS.get(v, "#9e9e9e") for v in data["verdict"]]
    bars = ax.bar(data["channel"].astype(str), data["ltv_cac"], color=colours)
    ax.bar_label(bars, labels=[f"{v:.1f}" for v in data["ltv_cac"]], padding=2)
    ax.axhline(result.target_ratio, color="black", linestyle="--",
               label=f"target {result.target_ratio:g}:1")
    ax.axhline(1.0, color="grey", linestyle=":", label="break-even 1:1")
    top = max([result.target_ratio, *data["ltv_cac"].tolist()])
    ax.set_ylim(0, top * 1.15)  # room for the bar labels and the target line
    ax.set_ylabel("LTV:CAC")
    ax.set_title("LTV:CAC by acquisition channel")
    ax.legend(loc="upper right")
    if data.empty:
        ax.text(0.5, 0.5, "no channel with customers and a CAC", ha="center",
                transform=ax.transAxes)
    return fig


# --------------------------------------------------------------------------------------------
# Synthetic demo data
# --------------------------------------------------------------------------------------------


def synthetic_channels(
    customer_ids: Sequence[Any] | pd.Series | np.ndarray,
    seed: int = 2024,
    shares: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """SYNTHETIC acquisition channels for datasets that have none (the CDNOW demo).

    CDNOW records no acquisition channel; this invents one so ``clvmodel budget`` can be
    demonstrated. It is **not** data: channels are assigned uniformly at random, so every
    channel's CLV distribution is the same up to noise and differences in LTV:CAC come from the
    (equally synthetic) CACs of ``configs/cac_demo.yaml``.

    Exactly ``round(share * n)`` customers per channel (largest-remainder rounding) are chosen by
    a permutation from ``numpy.random.default_rng(seed)``, so the mix is fixed and the result is
    reproducible. Default shares: :data:`SYNTHETIC_CHANNEL_SHARES` (search 40%, social 25%,
    email 20%, affiliate 15%).

    Returns
    -------
    DataFrame
        ``customer_id`` (as given, same order), ``channel``.
    """
    mix = dict(shares if shares is not None else SYNTHETIC_CHANNEL_SHARES)
    weights = np.array(list(mix.values()), dtype=float)
    if not len(mix) or (weights < 0).any() or weights.sum() <= 0:
        raise ClvError("synthetic channel shares must be non-negative with a positive sum")
    ids = pd.Series(list(customer_ids) if not isinstance(customer_ids, pd.Series)
                    else customer_ids.to_numpy())
    n = len(ids)
    exact = weights / weights.sum() * n
    counts = np.floor(exact).astype(int)
    # Largest remainder: hand the leftover customers to the channels that lost most to flooring.
    leftover = n - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:leftover]] += 1
    labels = np.repeat(np.array(list(mix), dtype=object), counts)
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"customer_id": ids.to_numpy(), "channel": rng.permutation(labels)})
