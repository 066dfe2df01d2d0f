"""Time in the units people plan in: horizons such as ``"3 years"`` and annual discount rates.

A model counts time in one unit, its ``time_unit``: ``day``, ``week``, ``month`` or ``year``. The
lengths are fixed and exact (:data:`DAYS`)::

    day = 1 day,  week = 7 days,  month = 365.25 / 12 = 30.4375 days,  year = 365.25 days

(a month is a twelfth of the mean Julian year, never a hidden "30 days"; the CDNOW summary's
fractional weeks are days / 7).

**Horizons** (:func:`parse_horizon`) are written ``"3 years"``, ``"3y"``, ``"3 yr"``, ``"36m"``,
``"36 months"``, ``"156w"``, ``"1095d"``; a bare number (``52`` or ``"52"``) is in the model's
own unit and must be whole, as before. A horizon in another unit is converted exactly (rational
arithmetic on the day counts above) and then **rounded down to whole periods of the model's
unit**: the periods that end within the horizon asked for. "3 years" on a weekly model is
156.536 weeks, so 156 weeks are valued and the last 0.536 week, which ends after the third year,
is not; "3 years" on a monthly model is exactly 36 months. Every output that used a horizon says
both (:meth:`Settings.describe`). A horizon shorter than one period of the model is refused.

**Discount rates**: ``discount_rate`` is per period of the model's unit; ``annual_discount_rate``
``r`` is converted exactly to the per-period rate with the same present value over a year::

    d = (1 + r) ^ (days per period / 365.25) − 1      (10 % a year: 0.0018283 per week)

Give one or the other, not both. A per-period rate that looks like an annual one typed on a short
unit gets a warning (:data:`ANNUAL_LOOKING`, :meth:`Settings.warnings`): at least 0.01 per day
(3,678 % a year), 0.05 per week (1,164 % a year) or 0.10 per month (214 % a year). It is a warning,
not an error: such a rate may be meant.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from clvmodel.errors import ClvError

__all__ = ["DAYS", "UNIT_DAYS", "ANNUAL_LOOKING", "Horizon", "Settings", "check_rate", "defaults_of", "has_unit", "length", "parse_horizon", "per_period_rate", "resolve"]

#: Days per unit, exactly (a month is 365.25 / 12 days, a year 365.25 days).
DAYS: dict[str, Fraction] = {
    "day": Fraction(1),
    "week": Fraction(7),
    "month": Fraction(1461, 48),
    "year": Fraction(1461, 4),
}
#: :data:`DAYS` as floats (all four are exact binary fractions: 1, 7, 30.4375, 365.25).
UNIT_DAYS: dict[str, float] = {unit: float(days) for unit, days in DAYS.items()}

#: Per-period discount rates from which a rate on that unit looks like an annual rate typed as
#: a per-period one (a warning, not an error).
ANNUAL_LOOKING: dict[str, float] = {"day": 0.01, "week": 0.05, "month": 0.10}

#: The longest horizon, per unit: 100 years (36,525 days, 5,217 weeks, 1,200 months).
MAX_HORIZON = {"day": 36_525, "week": 5_217, "month": 1_200, "year": 100}

_SUFFIXES = {
    "d": "day", "day": "day", "days": "day",
    "w": "week", "wk": "week", "wks": "week", "week": "week", "weeks": "week",
    "m": "month", "mo": "month", "mos": "month", "mon": "month", "month": "month", "months": "month",
    "y": "year", "yr": "year", "yrs": "year", "year": "year", "years": "year",
}
_HORIZON = re.compile(r"^\s*([0-9]{1,20}(?:\.[0-9]{1,9})?)\s*([A-Za-z]*)\s*$")  # ASCII digits only
_EXAMPLE = "e.g. \"3 years\", 3y, 36m, 156w, 1095d, or a whole number of the model's periods"


def _plural(n: Any, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _show(value: Fraction) -> str:
    """An exact amount for a message: whole as is, else 2 decimals (``156.54``)."""
    return str(value.numerator) if value.denominator == 1 else f"{float(value):,.2f}"


@dataclass(frozen=True)
class Horizon:
    """A horizon resolved to whole periods of a model's unit."""

    #: Whole periods of :attr:`unit` valued.
    periods: int
    unit: str
    #: The horizon in :attr:`unit`, exactly (``periods`` when given in the model's unit).
    exact: Fraction
    #: What was asked, e.g. ``"3 years"``; ``None`` for a bare number in the model's unit.
    given: str | None = None

    def describe(self) -> str:
        """``"156 weeks (3 years = 156.54 weeks; whole weeks within it)"``, or ``"39 weeks"``."""
        used = _plural(self.periods, self.unit)
        if self.given is None:
            return used
        if self.exact == self.periods:
            return f"{used} ({self.given})"
        return f"{used} ({self.given} = {_show(self.exact)} {self.unit}s; whole {self.unit}s within it)"


def parse_horizon(value: Any, unit: str | None, *, name: str = "horizon") -> Horizon:
    """A horizon as whole periods of ``unit`` (see the module docstring for the rule).

    Parameters
    ----------
    value
        A whole number (periods of ``unit``) or text: ``"3 years"``, ``"3y"``, ``"36m"``, ``"156w"``,
        ``"1095d"``, ``"52"``.
    unit
        The model's time unit; ``None`` only checks the text (before a model is loaded).
    name
        The option or key named in messages (``--horizon``, ``clv.horizon``, ``params.horizon``).

    Raises
    ------
    ClvError
        One line: not a horizon, not positive, a bare number that is not whole, shorter than one
        period, or longer than 100 years.
    """
    if isinstance(value, bool) or value is None:
        raise ClvError(f"{name} must be a horizon, got {value!r}; use {_EXAMPLE}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ClvError(f"{name} must be a finite number of periods, got {value}; use {_EXAMPLE}")
        amount, source, text = Fraction(value), None, None
    elif isinstance(value, str):
        match = _HORIZON.match(value)
        suffix = match.group(2).lower() if match else ""
        if not match or (suffix and suffix not in _SUFFIXES):
            shown = value if len(value) <= 40 else value[:40] + "…"
            raise ClvError(f"{name} {shown!r} is not a horizon; use {_EXAMPLE}")
        amount, source = Fraction(match.group(1)), _SUFFIXES.get(suffix)
        text = f"{match.group(1)} {source}s" if source and amount != 1 else (f"1 {source}" if source else None)
    else:
        raise ClvError(f"{name} must be a horizon, got {type(value).__name__}; use {_EXAMPLE}")
    if amount <= 0:
        raise ClvError(f"{name} must be > 0, got {value!r}; use {_EXAMPLE}")
    if source is None:  # a bare number: periods of the model's unit, whole, as always
        if amount.denominator != 1:
            raise ClvError(f"{name} must be a whole number of periods, got {value}; write the unit for a part "
                           f"(e.g. \"18 months\") or use {_EXAMPLE}")
    if unit is None:
        return Horizon(int(amount) if source is None else 0, source or "period", amount, text)
    if unit not in DAYS:
        raise ClvError(f"unknown time unit {unit!r}; use one of: {', '.join(DAYS)}")
    exact = amount if source is None else amount * DAYS[source] / DAYS[unit]
    periods = math.floor(exact)
    if periods < 1:
        raise ClvError(f"{name} {text} is {_show(exact)} {unit}s, less than one {unit} (the model's unit); "
                       f"use at least 1 {unit}")
    if periods > MAX_HORIZON[unit]:
        raise ClvError(f"{name} {text or value} is more than 100 years; use at most {MAX_HORIZON[unit]:,} {unit}s "
                       "(e.g. \"3 years\" or 52 weeks for a year)")
    return Horizon(periods, unit, exact, text if source not in (None, unit) else None)


def has_unit(value: Any) -> bool:
    """Whether ``value`` is a horizon written with a unit (``"3 years"``, ``36m``), not a bare number."""
    match = _HORIZON.match(value) if isinstance(value, str) else None
    return bool(match and match.group(2))


def check_rate(value: Any, name: str) -> float:
    """A rate (per period or per year) as a finite float >= 0, or one line naming ``name``."""
    return _rate(value, name)


def length(value: Any, unit: str, *, name: str = "--periods") -> Fraction:
    """A length in ``unit``, exactly and not rounded (``"3 years"`` in weeks: 4383/28 = 156.54);
    a bare number is in ``unit`` and may be fractional. For :mod:`clvmodel.formula`, whose lifetime
    counts a fractional last period pro rata."""
    if isinstance(value, str) and _HORIZON.match(value) and not _HORIZON.match(value).group(2):
        value = Fraction(_HORIZON.match(value).group(1))
        if value <= 0:
            raise ClvError(f"{name} must be > 0, got {value}; use {_EXAMPLE}")
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not (math.isfinite(value) and value > 0):
            raise ClvError(f"{name} must be a finite number > 0, got {value}; use {_EXAMPLE}")
        return Fraction(value)
    return parse_horizon(value, unit, name=name).exact


def per_period_rate(annual: float, unit: str) -> float:
    """``(1 + annual) ^ (days per period / 365.25) − 1``, exactly the same present value over a year."""
    return math.expm1(math.log1p(annual) * float(DAYS[unit] / DAYS["year"]))


def _rate(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise ClvError(f"{name} must be a number >= 0, got {value!r}; use e.g. 0.10 for 10 % (0 for none)")
    return number


@dataclass(frozen=True)
class Settings:
    """The horizon and per-period discount rate a valuation used, and how they were given."""

    horizon: Horizon
    #: Per period of the model's unit.
    discount_rate: float
    #: The annual rate it came from, when given as one.
    annual_discount_rate: float | None = None

    @property
    def periods(self) -> int:
        return self.horizon.periods

    @property
    def unit(self) -> str:
        return self.horizon.unit

    def describe(self) -> str:
        """One line: ``"horizon 156 weeks (3 years = …); discount 0.0018283 per week (10 % a year)"``."""
        rate = f"discount {self.discount_rate:.8g} per {self.unit}"
        if self.annual_discount_rate is not None:
            rate += f" ({self.annual_discount_rate * 100:g} % a year)"
        return f"horizon {self.horizon.describe()}; {rate}"

    def warnings(self) -> list[str]:
        """A line when the per-period rate looks like an annual rate (:data:`ANNUAL_LOOKING`)."""
        bound = ANNUAL_LOOKING.get(self.unit)
        if self.annual_discount_rate is not None or bound is None or self.discount_rate < bound:
            return []
        yearly = (1 + self.discount_rate) ** float(DAYS["year"] / DAYS[self.unit]) - 1
        return [f"discount rate {self.discount_rate:g} is per {self.unit} ({yearly * 100:,.0f} % a year); for "
                f"{self.discount_rate * 100:g} % a year pass --annual-discount-rate {self.discount_rate:g} "
                "(config: clv.annual_discount_rate)"]


def defaults_of(model: Any) -> dict[str, Any]:
    """A trained model's own horizon and rate, as :func:`resolve` takes them: its ``clv`` (whole
    periods, per-period rate), with the horizon and annual rate as its config wrote them (so the
    output can say "3 years" and "10 % a year")."""
    clv = dict(getattr(model, "clv", None) or {})
    written = (getattr(model, "config", None) or {}).get("clv") or {}
    out = {"horizon": clv.get("horizon"), "discount_rate": clv.get("discount_rate")}
    if isinstance(written, dict):
        if isinstance(written.get("horizon"), str):
            out["horizon"] = written["horizon"]
        if written.get("annual_discount_rate") is not None:
            out["annual_discount_rate"] = written["annual_discount_rate"]
    return out


def resolve(
    unit: str,
    horizon: Any = None,
    discount_rate: Any = None,
    annual_discount_rate: Any = None,
    *,
    defaults: dict[str, Any] | None = None,
    names: tuple[str, str, str] = ("--horizon", "--discount-rate", "--annual-discount-rate"),
) -> Settings:
    """The :class:`Settings` of a valuation on a model in ``unit``.

    ``horizon``, ``discount_rate`` and ``annual_discount_rate`` are what the caller gave
    (``None``: not given); ``defaults`` are the model's (``horizon``, ``discount_rate``, maybe
    ``annual_discount_rate``), used for what is not given. Giving either rate replaces the model's
    rate whole. ``names`` name the three in messages.

    Raises
    ------
    ClvError
        Both rates given, a bad horizon or rate (one line).
    """
    defaults = defaults or {}
    if discount_rate is not None and annual_discount_rate is not None:
        raise ClvError(f"give {names[1]} (per period) or {names[2]} (per year), not both")
    if discount_rate is None and annual_discount_rate is None:
        discount_rate = defaults.get("discount_rate")
        annual_discount_rate = defaults.get("annual_discount_rate")
        if annual_discount_rate is not None:
            discount_rate = None
    given = parse_horizon(defaults.get("horizon") if horizon is None else horizon, unit, name=names[0])
    if annual_discount_rate is not None:
        annual = _rate(annual_discount_rate, names[2])
        return Settings(given, per_period_rate(annual, unit), annual)
    return Settings(given, _rate(0.0 if discount_rate is None else discount_rate, names[1]))
