"""The CAC config file: schema, loading, and one-line validation messages.

:class:`CacConfig` (with :class:`ChannelConfig` and :class:`ResponseConfig`) is the pydantic
schema of the YAML file; every key, its default and its rules are documented in the docstring of
:mod:`clvmodel.budget`. :func:`load_cac_config` reads a file and :func:`parse_cac_config` validates
a mapping; either raises :class:`~clvmodel.errors.ClvError` with one line that names the key and
the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from clvmodel.config import MAX_HORIZON, Problem, cut, excerpt, one_line, read_yaml
from clvmodel.errors import ClvError

UNKNOWN = "unknown"
"""Channel of customers without one: reported, never allocated, needs no CAC entry."""

DEFAULT_RETENTION_WEIGHTS: dict[str, float] = {
    "VIP": 1.0,
    "high": 1.0,
    "medium": 1.0,
    "low": 1.0,
    "at_risk": 1.0,
    "lost": 0.0,
}


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
    """CLV-vs-CAC settings; every key is documented in the docstring of :mod:`clvmodel.budget`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    target_ratio: float = Field(default=3.0, ge=1)
    margin: float = Field(default=1.0, gt=0, le=1)
    budget: float = Field(default=0.0, ge=0)
    # At most 100 years in days, as clv.horizon (config.MAX_HORIZON): payback walks every period.
    horizon: int | None = Field(default=None, ge=1, le=MAX_HORIZON["day"])
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


def _describe(problem: Problem) -> str:
    """A CAC config's problem (:func:`clvmodel.config.one_line`): where, what, and how to fix it."""
    loc = problem.loc
    where = problem.where
    kind = problem.kind
    ctx = problem.context
    got = problem.given
    keys = [str(loc[-1]), str(loc[0])] if loc else []
    hint = next((_HINTS[k] for k in keys if k in _HINTS), "change the value")
    if "[key]" in loc:
        where = ".".join(str(p) for p in loc if p != "[key]")
        return f"{where}: names must be text (got {excerpt(got)}); quote the name"
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
        text = f"must be {op} {_num(bound)} (got {excerpt(got)}); {hint}"
    elif kind == "too_short":
        text = f"is empty; {hint if hint != 'change the value' else 'add at least one entry'}"
    elif kind == "finite_number":
        text = f"must be a finite number (got {excerpt(got)}); write a plain number"
    elif kind.startswith("int_"):
        text = f"expected a whole number (got {excerpt(got)}); {hint}"
    elif kind.startswith("float_"):
        text = f"expected a number (got {excerpt(got)}); write a plain number such as 40"
    elif kind in {"dict_type", "model_type", "model_attributes_type"}:
        text = f"expected a mapping of keys (got {type(got).__name__}); see clvmodel.budget"
    elif kind == "value_error":
        text = str(ctx.get("error", problem.message))[:300]
    else:
        text = f"{(problem.message or 'invalid')[:300]}; {hint}"
    # A key is the user's text too (a 1 MB channel name): cut like any echoed value.
    line = f"{cut(where)}: {text}" if where else text
    more = problem.others
    if more:
        line += f" (and {more} more problem{'s' if more > 1 else ''})"
    return line


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
        raise ClvError(one_line(err, source, _describe)) from None


def load_cac_config(path: str | Path) -> CacConfig:
    """Read a CAC config YAML file and validate it.

    Read by :func:`clvmodel.config.read_yaml`, the one YAML reader: safe loading, at most 1 MB,
    no aliases, no duplicate keys, bounded nesting.

    Raises
    ------
    ClvError
        File missing, too large, YAML syntax error, or any validation problem (one line each).
    """
    p = Path(path)
    data = read_yaml(p, f"CAC config not found: {p}; check the path")
    return parse_cac_config(data, source=str(p))
