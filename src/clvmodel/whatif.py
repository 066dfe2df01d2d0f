"""What-if: the seeds' levers (retention, purchase frequency, order value) on a trained model.

``clvmodel whatif`` recomputes, under each lever alone and under all of them together, the
*remaining* CLV of an existing customer base (total and per segment) and the *acquisition value*
of a new customer per channel (:mod:`clvmodel.acquisition`), as absolute and % change of the
profit (the value at the margin). Every lever is defined on the fitted model's own parameters.

Levers
------
**Retention** (``+5pp``: points of one-year retention; ``+5%``: percent of it). The dropout
process is scaled so that the share of *new* customers still active one year after their first
purchase, ``S(Y)`` with ``Y`` one year in the model's time unit (52 weeks, 365 days, 12 months,
1 year), rises to the target. The scale ``m`` multiplies the *mean* dropout and keeps its
heterogeneity:

* Pareto/NBD and GGom/NBD: μ (or η) ~ Gamma(s, β), mean ``s/β``: ``β → β/m`` (shape ``s`` and so
  the coefficient of variation ``1/√s`` fixed). One-year survival of a new customer, Pareto/NBD
  ``S(t) = (β/(β + t))^s`` (Schmittlein, Morrison & Colombo 1987); GGom/NBD
  ``S(t) = (β/(β + e^{bt} − 1))^s`` (Bemmaor & Glady 2012).
* BG/NBD and MBG/NBD: p ~ Beta(a, b), mean ``a/(a + b)``: ``a → m a`` and ``b → a + b − m a``,
  so ``a + b`` and with it the polarisation index ``1/(a + b + 1)`` stay fixed (scaling ``b``
  alone would also shrink the spread of p, and scaling ``a`` alone would move ``a + b`` with the
  mean; fixing ``a + b`` moves only the level of dropout). ``m < (a + b)/a``. A customer drops
  out after a purchase with probability p, and purchases at rate λ, so given (λ, p) the time to
  dropout is exponential with rate λp (Fader, Hardie & Lee 2005) and

  .. math::

      S(t) = E_{λ,p}[e^{−λ p t}] = \\int_0^1 \\Big(\\frac{α}{α + p t}\\Big)^r \\mathrm{Beta}(p; a, b)\\,dp
           = {}_2F_1(r, a; a + b; −t/α),

  the last by Euler's integral (DLMF 15.6.1). It is evaluated by adaptive quadrature with the
  Beta density's endpoint singularities as the weight (QUADPACK's QAWS, :func:`scipy.integrate.quad`
  with ``weight="alg"``; Piessens et al. 1983); the tests check it against the ₂F₁ form. MBG/NBD
  (Batislam, Denizel & Filiztekin 2007) adds a dropout with probability p at time 0:
  ``S(t) = E[(1 − p) e^{−λ p t}]``, the same integral with ``(1 − p)`` inside
  (``= b/(a+b) · ₂F₁(r, a; a + b + 1; −t/α)``).
* sBG (Fader & Hardie 2007): θ ~ Beta(α, β), mean ``α/(α + β)``: ``α → m α``, ``β → α + β − m α``;
  ``S(t) = B(α, β + t)/B(α, β)`` (closed form) with ``t`` the renewals in a year.

``m`` is found by Brent's method (:func:`scipy.optimize.brentq`) on ``S_m(Y) = target``; ``S_m``
is monotone in ``m`` and tends to 1 as ``m → 0``, so any target in ``(0, 1)`` above the limit
``m → ∞`` (or ``m → (a + b)/a``) is reached; 100 % or more is not (one line, exit 2). The scale is
solved on the scoring (primary) model and applied to every purchase model of the trained model
(a covariate model's profiles then each have their mean dropout scaled by the same ``m``). It is
solved for the retention lever alone: pulled together with the frequency lever on BG/NBD or
MBG/NBD, where every purchase is a chance to drop out, one-year retention ends lower than the
target (the table's ``one_year_retention`` shows each scenario's).

**Frequency** (``+10%``): every customer's purchase rate λ times ``c = 1 + x``. Since ``cλ ~
Gamma(r, α/c)`` when ``λ ~ Gamma(r, α)``, for new customers this is ``α → α/c`` (``E[λ] = r/α``).

**Order value** (``+10%``): every customer's spend per order times ``c``. For the Gamma-Gamma
model (Fader & Hardie 2013) ``ν → ν/c`` for each customer, i.e. the scale ``v → c v`` of the
distribution of ν, so ``E[M] = p v/(q − 1)`` scales by ``c``; the first order of a new customer
scales with it (subscriptions: the fee).

What is recomputed
------------------
*New customers*: the model with all the scaled parameters (one-year retention, the acquisition
value of :func:`clvmodel.acquisition.acquisition_table`, point estimates).

*The existing base* (customers with histories ``(x, t_x, T)``): retention is the model with the
scaled dropout parameters, applied to the same histories (P(alive) and the future are both
recomputed: a base drawn from a population that drops out less). Frequency and order value act on
each customer's *own* rate and spend from now on, not on the prior: a customer's posterior is
dominated by their history (λ | x, T ~ Gamma(r + x, α + T)), so scaling α alone would move the
CDNOW base by +1.6 % for a +10 % lever and *lower* P(alive) (a silent customer looks more
likely gone when customers buy more). So, given alive at T, with rates cλ:

* Pareto/NBD, GGom/NBD (lifetime independent of purchasing): ``E_c[Y(t) | alive] = c · E[Y(t) | alive]``;
* BG/NBD, MBG/NBD (a dropout chance at each purchase): the whole future is the same process run
  ``c`` times as fast, ``E_c[Y(t) | alive] = E[Y(c t) | alive]`` (equivalently α + T → (α + T)/c
  in equation (10) of Fader, Hardie & Lee 2005);

and the order value ``E[M | x, m̄]`` (equation (5) of Fader & Hardie 2013) times ``c``. For a new
customer (no history) these are exactly the parameter scalings above. **Together**: the retention
scaling first (parameters), then the frequency and spend scalings of each customer's future; for
new customers simply every scaled parameter at once.

Remaining CLV per segment groups customers by their segment under the fitted model (the
baseline), so each segment compares the same customers.

References
----------
Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "Counting your customers the easy way: an
alternative to the Pareto/NBD model", *Marketing Science* 24(2), 275-284. Fader, P. S. and
Hardie, B. G. S. (2007), "How to project customer retention", *Journal of Interactive Marketing*
21(1), 76-90. Fader, P. S. and Hardie, B. G. S. (2013), "The Gamma-Gamma model of monetary
value". Bemmaor, A. C. and Glady, N. (2012), *Management Science* 58(5), 1012-1021. Batislam,
E. P., Denizel, M. and Filiztekin, A. (2007), *International Journal of Research in Marketing*
24(3), 201-209. NIST Digital Library of Mathematical Functions, 15.6.1. Piessens, R. et al.
(1983), *QUADPACK*, Springer.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate
from scipy.optimize import brentq
from scipy.special import betaln

from clvmodel.artifact import TrainedModel
from clvmodel.config import excerpt
from clvmodel.errors import ClvError
from clvmodel.models.mbgnbd import ModifiedBetaGeoModel
from clvmodel.models.sbg import ShiftedBetaGeometric
from clvmodel.units import defaults_of, resolve

__all__ = [
    "COLUMNS",
    "LEVERS",
    "YEAR",
    "Lever",
    "RetentionSolution",
    "Scenario",
    "WhatIfFiles",
    "WhatIfResult",
    "base_model",
    "new_customer_model",
    "one_year_retention",
    "parse_lever",
    "render",
    "scale_dropout",
    "scale_frequency",
    "scale_spend",
    "solve_retention",
    "survival_new",
    "tornado_chart",
    "whatif",
    "whatif_files",
]

#: The levers, in the order they are reported.
LEVERS = ("retention", "frequency", "order_value")
#: One year in each time unit: the horizon of "one-year retention".
YEAR = {"day": 365, "week": 52, "month": 12, "year": 1}
#: The seeds' claim: "5 % more retention → 25–95 % more profit", checked at +5 points.
CLAIM = "+5pp"

_LEVER = re.compile(r"^\s*([+-]?)\s*(\d+(?:\.\d*)?|\.\d+)\s*(pp|%)\s*$")
_OPTION = {"retention": "--retention", "frequency": "--frequency", "order_value": "--order-value"}


# --- the levers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lever:
    """One lever as asked: ``amount`` in ``unit`` (``"pp"``: percentage points; ``"%"``: percent)."""

    name: str
    amount: float
    unit: str
    text: str

    @property
    def factor(self) -> float:
        """``1 + amount/100`` (a percent lever's multiplier)."""
        return 1.0 + self.amount / 100.0

    def target(self, before: float) -> float:
        """The one-year retention asked for, from ``before`` (a retention lever)."""
        return before + self.amount / 100.0 if self.unit == "pp" else before * self.factor


def parse_lever(text: Any, name: str) -> Lever:
    """Read ``+5pp``, ``+5%``, ``-2.5%``, ``10%`` (a sign is optional) for lever ``name``.

    Points (``pp``) apply to retention only (a share); frequency and order value take percent.

    Raises
    ------
    ClvError
        One line naming the option: unreadable, ``pp`` on a rate, or a factor ``≤ 0``.
    """
    if name not in LEVERS:
        raise ClvError(f"unknown lever {excerpt(name)}; use one of {', '.join(LEVERS)}")
    option = _OPTION[name]
    example = "+5pp or +5%" if name == "retention" else "+10%"
    match = _LEVER.match(text) if isinstance(text, str) else None
    if match is None:
        raise ClvError(f"{option} {excerpt(text)} is not a change; use e.g. {option} {example}")
    sign, digits, unit = match.groups()
    amount = float(digits) * (-1.0 if sign == "-" else 1.0)
    if unit == "pp" and name != "retention":
        raise ClvError(f"{option} {text.strip()}: points (pp) apply to retention, a share; use percent, e.g. "
                       f"{option} {example}")
    if not math.isfinite(amount) or (unit == "%" and amount <= -100):
        raise ClvError(f"{option} {text.strip()} leaves nothing (a factor <= 0); use e.g. {option} {example}")
    return Lever(name, amount, unit, f"{sign or '+'}{digits}{unit}")


# --- dropout: survival of a new customer and its scaling --------------------------------------


def _params(model: Any) -> dict[str, float]:
    params = getattr(model, "params_", None)
    if not params:
        raise ClvError(f"{type(model).__name__} is not fitted; load a trained model")
    return params


def _kind(model: Any) -> str:
    """How the family's dropout is parametrised: ``beta`` (a, b), ``gamma`` (s, β), ``contractual`` (sBG's α, β)."""
    if isinstance(model, ShiftedBetaGeometric):
        return "contractual"
    params = _params(model)
    if {"r", "alpha", "a", "b"} <= set(params):
        return "beta"
    if {"r", "alpha", "s", "beta"} <= set(params):
        return "gamma"
    raise ClvError(f"what-if levers are defined for BG/NBD, MBG/NBD, Pareto/NBD, GGom/NBD and sBG models, "
                   f"not {type(model).__name__}")


def survival_new(model: Any, t: float) -> float:
    """Share of new customers still alive ``t`` periods after their first purchase, ``S(t)``.

    See the module docstring for each family's formula (quadrature for BG/NBD and MBG/NBD).
    """
    p = _params(model)
    kind = _kind(model)
    t = float(t)
    if kind == "contractual":
        return float(np.exp(betaln(p["alpha"], p["beta"] + t) - betaln(p["alpha"], p["beta"])))
    if kind == "gamma":
        grow = math.expm1(p["b"] * t) if "b" in p else t  # GGom/NBD: e^{bt} − 1; Pareto/NBD: t
        return float((p["beta"] / (p["beta"] + grow)) ** p["s"])
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    first = isinstance(model, ModifiedBetaGeoModel)  # MBG/NBD: also a dropout at time 0, weight (1 − p)
    value, _ = integrate.quad(lambda q: (alpha / (alpha + q * t)) ** r, 0.0, 1.0, weight="alg",
                              wvar=(a - 1.0, b if first else b - 1.0), epsabs=1e-13, epsrel=1e-12, limit=200)
    return float(value / math.exp(betaln(a, b)))


def _dropout_limit(model: Any) -> float:
    """The largest scale of the mean dropout (``inf`` for a gamma; ``(a + b)/a`` for a beta)."""
    p, kind = _params(model), _kind(model)
    if kind == "beta":
        return (p["a"] + p["b"]) / p["a"]
    if kind == "contractual":
        return (p["alpha"] + p["beta"]) / p["alpha"]
    return math.inf


def _with_params(model: Any, params: dict[str, float]) -> Any:
    """A copy of ``model`` at other parameters, without covariance (a what-if is not an estimate)."""
    scaled = copy.copy(model)
    scaled.params_ = params
    if hasattr(scaled, "covariance_"):
        scaled.covariance_ = None
    return scaled


def scale_dropout(model: Any, scale: float) -> Any:
    """``model`` with its mean dropout times ``scale`` (see the module docstring); ``1`` returns it as is.

    Pareto/NBD, GGom/NBD: ``β → β/m``; BG/NBD, MBG/NBD: ``a → m a, b → a + b − m a``;
    sBG: ``α → m α, β → α + β − m α``.
    """
    if scale == 1.0:
        return model
    p, kind = dict(_params(model)), _kind(model)
    if not 0 < scale < _dropout_limit(model):
        raise ClvError(f"dropout scale {scale:g} is outside (0, {_dropout_limit(model):g}) for {type(model).__name__}")
    if kind == "gamma":
        p["beta"] = p["beta"] / scale
    else:
        first, second = ("a", "b") if kind == "beta" else ("alpha", "beta")
        total = p[first] + p[second]
        p[first] = scale * p[first]
        p[second] = total - p[first]
    return _with_params(model, p)


def scale_frequency(model: Any, factor: float) -> Any:
    """``model`` with every customer's purchase rate times ``factor``: ``α → α/c`` (NBD families)."""
    if factor == 1.0:
        return model
    if _kind(model) == "contractual":
        raise ClvError("--frequency does not apply to a subscription (sBG) model: a subscriber pays once a period")
    p = dict(_params(model))
    p["alpha"] = p["alpha"] / factor
    return _with_params(model, p)


def scale_spend(model: Any, factor: float) -> Any:
    """A Gamma-Gamma model with its mean spend times ``factor``: ``v → c v``."""
    if factor == 1.0 or model is None:
        return model
    p = dict(_params(model))
    p["v"] = p["v"] * factor
    return _with_params(model, p)


@dataclass(frozen=True)
class RetentionSolution:
    """One-year retention of a new customer before and after, and the dropout scale ``m`` that does it."""

    lever: Lever
    periods: float  # one year in the model's time unit
    before: float
    target: float
    after: float
    scale: float


def one_year_retention(model: Any, time_unit: str) -> float:
    """``S(Y)``: the share of new customers still active a year after their first purchase."""
    return survival_new(model, _year(time_unit))


def _year(time_unit: str) -> float:
    if time_unit not in YEAR:
        raise ClvError(f"time unit {excerpt(time_unit)}: one-year retention needs day, week, month or year")
    return float(YEAR[time_unit])


def solve_retention(model: Any, time_unit: str, lever: Lever) -> RetentionSolution:
    """The dropout scale ``m`` whose new customers' one-year retention is ``lever``'s target.

    Brent's method on ``log m``; a zero lever gives ``m = 1`` exactly.

    Raises
    ------
    ClvError
        One line when the target is 100 % or more, 0 or less, or beyond what scaling the dropout
        can reach (a beta's ``m → (a + b)/a``).
    """
    year = _year(time_unit)
    before = survival_new(model, year)
    target = lever.target(before)
    option = f"{_OPTION['retention']} {lever.text}"
    if lever.amount == 0:
        return RetentionSolution(lever, year, before, before, before, 1.0)
    if not 0 < target < 1:
        raise ClvError(f"{option}: one-year retention {before:.1%} would become {target:.1%}, outside 0-100 %; "
                       "ask for less")

    def gap(log_scale: float) -> float:
        return survival_new(scale_dropout(model, math.exp(log_scale)), year) - target

    limit = _dropout_limit(model)
    high = math.log(limit) - 1e-9 if math.isfinite(limit) else math.log(1e6)
    low = math.log(1e-9)
    if target > before:
        bracket = (low, 0.0)
    else:
        bracket = (0.0, high)
    ends = [gap(bracket[0]), gap(bracket[1])]
    if ends[0] * ends[1] > 0:
        reach = survival_new(scale_dropout(model, math.exp(bracket[0 if target > before else 1])), year)
        bound = "at most" if target > before else "at least"
        raise ClvError(f"{option}: one-year retention {before:.3%} cannot reach {target:.3%} by scaling the dropout "
                       f"of {type(model).__name__} ({bound} {reach:.3%}); ask for less")
    root = brentq(gap, *bracket, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500)
    scale = math.exp(root)
    return RetentionSolution(lever, year, before, target, survival_new(scale_dropout(model, scale), year), scale)


# --- the scenarios ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """Scalings applied together: mean dropout ``× retention_scale``, rates and spend ``× factor``."""

    name: str
    label: str
    retention_scale: float = 1.0
    frequency: float = 1.0
    order_value: float = 1.0


class _FutureRates:
    """A purchase model whose customers buy ``factor`` times as often from their last observation on.

    P(alive) is the model's; given alive at T, see the module docstring: ``c · E[Y(t) | alive]``
    when the lifetime does not depend on purchases, ``E[Y(c t) | alive]`` when each purchase is a
    chance to drop out (BG/NBD, MBG/NBD).
    """

    def __init__(self, model: Any, factor: float) -> None:
        self.model = model
        self.factor = factor
        self.per_purchase = _kind(model) == "beta"
        self.params_ = model.params_
        self.name = getattr(model, "name", "")
        #: As the model's: P(alive) does not depend on the horizon, so both rules hold for the
        #: whole expectation as for its given-alive factor.
        self.factorised = getattr(model, "factorised", True)

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        return self.model.p_alive(frequency, recency, T)

    def expected_purchases_if_alive(self, frequency: Any, T: Any, *, t: Any) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        if self.per_purchase:
            return self.model.expected_purchases_if_alive(frequency, T, t=self.factor * t)
        return self.factor * np.asarray(self.model.expected_purchases_if_alive(frequency, T, t=t), dtype=float)

    def expected_purchases(self, frequency: Any, recency: Any, T: Any, *, t: Any) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        if self.per_purchase:
            return self.model.expected_purchases(frequency, recency, T, t=self.factor * t)
        return self.factor * np.asarray(self.model.expected_purchases(frequency, recency, T, t=t), dtype=float)

    def expected_purchases_new(self, t: Any) -> np.ndarray:
        return scale_frequency(self.model, self.factor).expected_purchases_new(t)


class _ScaledSpend:
    """A spend model whose every customer's expected order value is ``factor`` times the model's."""

    def __init__(self, model: Any, factor: float) -> None:
        self.model = model
        self.factor = factor
        self.params_ = model.params_

    @property
    def population_mean(self) -> float:
        return self.factor * self.model.population_mean

    def expected_order_value(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        return self.factor * np.asarray(self.model.expected_order_value(frequency, monetary_value), dtype=float)


def _roles(trained: TrainedModel) -> tuple[set[str], set[str]]:
    """Keys of the models the values come from: the primary (scoring) model and the new-customer
    purchase model of :mod:`clvmodel.acquisition`; the spend models. Other fitted families (kept
    for the leaderboard) value nothing and are left as they are."""
    used = {trained.primary} if trained.primary else set()
    if trained.acquisition is not None and trained.acquisition.purchase_model in trained.models:
        used.add(trained.acquisition.purchase_model)
    return used, set(trained.of_role("spend"))


def new_customer_model(trained: TrainedModel, scenario: Scenario) -> TrainedModel:
    """The trained model with every scaling of ``scenario`` applied to its parameters.

    Every purchase model: dropout (:func:`scale_dropout`) and rate (:func:`scale_frequency`);
    every spend model, the pooled one and each channel's own: ``v → c v``; each channel's mean
    first order times ``c``; a subscription's fee times ``c``. This is what a new customer is
    valued with.
    """
    purchases, spends = _roles(trained)
    models = dict(trained.models)
    for key in purchases:
        model = scale_dropout(models[key], scenario.retention_scale)
        models[key] = model if _kind(model) == "contractual" else scale_frequency(model, scenario.frequency)
    for key in spends:
        models[key] = scale_spend(models[key], scenario.order_value)
    clv = dict(trained.clv)
    if "fee" in clv and clv["fee"] is not None:
        clv["fee"] = float(clv["fee"]) * scenario.order_value
    acquisition = trained.acquisition
    if acquisition is not None and scenario.order_value != 1.0:
        acquisition = copy.deepcopy(acquisition)
        for channel in acquisition.channels.values():
            channel.spend = scale_spend(channel.spend, scenario.order_value)
            if channel.first_order_value is not None:
                channel.first_order_value = channel.first_order_value * scenario.order_value
    return replace(trained, models=models, clv=clv, acquisition=acquisition, challenger=None)


def base_model(trained: TrainedModel, scenario: Scenario) -> TrainedModel:
    """The trained model as it scores the existing base under ``scenario`` (module docstring).

    The retention scaling changes the parameters; the frequency and order-value scalings act on
    each customer's own future rate and spend (:class:`_FutureRates`, :class:`_ScaledSpend`).
    """
    purchases, spends = _roles(trained)
    models = dict(trained.models)
    for key in purchases:
        model = scale_dropout(models[key], scenario.retention_scale)
        if scenario.frequency != 1.0:
            if _kind(model) == "contractual":
                raise ClvError("--frequency does not apply to a subscription (sBG) model: a subscriber pays once a "
                               "period")
            model = _FutureRates(model, scenario.frequency)
        models[key] = model
    for key in spends:
        if scenario.order_value != 1.0:
            models[key] = _ScaledSpend(models[key], scenario.order_value)
    clv = dict(trained.clv)
    if "fee" in clv and clv["fee"] is not None:
        clv["fee"] = float(clv["fee"]) * scenario.order_value
    return replace(trained, models=models, clv=clv, challenger=None)


# --- the recomputation ------------------------------------------------------------------------

#: The columns of :attr:`WhatIfResult.table`.
COLUMNS = ["scenario", "levers", "scope", "group", "customers", "one_year_retention", "baseline_revenue", "revenue",
           "baseline_profit", "profit", "profit_change", "pct_change", "ltv_cac", "max_allowable_cac"]
#: ``scope`` values: the base's total, one of its segments, a new customer of a channel.
BASE, SEGMENT, ACQUISITION = "base", "segment", "acquisition"


@dataclass
class WhatIfResult:
    """What :func:`whatif` computed; ``table`` holds one row per scenario × scope × group.

    ``revenue`` is the value at margin 1, ``profit`` at the margin; base rows are totals over the
    customers of the group, acquisition rows the value of one new customer of the channel.
    ``pct_change`` is the profit's (equal to the revenue's: the margin is one number).
    """

    model: str
    purchase_model: str
    time_unit: str
    horizon: int
    discount_rate: float
    margin: float
    levers: list[Lever]
    scenarios: list[Scenario]
    retention: RetentionSolution | None
    claim: RetentionSolution | None
    claim_error: str | None
    table: pd.DataFrame
    customers: int
    unscored: int = 0
    cac: float | None = None
    target_ratio: float = 3.0
    notes: list[str] = field(default_factory=list)

    def rows(self, scope: str, group: str | None = None) -> pd.DataFrame:
        """The table's rows of one scope (and group), indexed by scenario."""
        rows = self.table[self.table["scope"] == scope]
        if group is not None:
            rows = rows[rows["group"] == group]
        return rows.set_index("scenario")


def _base_values(trained: TrainedModel, customers: Any, scenario: Scenario, horizon: int, rate: float) -> pd.DataFrame:
    """Each customer's remaining CLV at margin 1 under ``scenario`` (point estimates)."""
    model = base_model(trained, scenario)
    if trained.subscription:
        from clvmodel.subscription import score_subscribers

        return score_subscribers(model, customers, discount_rate=rate, margin=1.0)
    from clvmodel.predict import score

    return score(model, customers, horizon=horizon, discount_rate=rate, margin=1.0, interval_draws=0)


def _new_values(trained: TrainedModel, scenario: Scenario, horizon: int, rate: float) -> pd.DataFrame | None:
    """The value of a new customer per channel at margin 1 (``channel, customers, value``)."""
    model = new_customer_model(trained, scenario)
    if trained.subscription:
        sbg = model.retention_model
        derl = float(sbg.discounted_expected_residual_lifetime(rate, 0))
        fee = float(model.clv.get("fee") or 1.0)
        return pd.DataFrame({"channel": ["all"], "customers": [int(sbg.n_)], "value": [fee * (1 + derl / (1 + rate))]})
    if trained.purchase_model is None:
        return None
    from clvmodel.acquisition import acquisition_table

    table = acquisition_table(model, horizon=horizon, discount_rate=rate, margin=1.0, draws=0)
    return pd.DataFrame({"channel": table["channel"].astype(str), "customers": table["customers"],
                         "value": table["acquisition_value"].to_numpy(dtype=float)})


def _number(value: Any, name: str, *, low: float = 0.0) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number <= low:
        raise ClvError(f"{name} must be a number > {low:g}, got {excerpt(value)}")
    return number


def whatif(
    trained: TrainedModel,
    customers: Any,
    *,
    retention: str | Lever | None = None,
    frequency: str | Lever | None = None,
    order_value: str | Lever | None = None,
    horizon: int | str | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
    cac: float | None = None,
    target_ratio: float = 3.0,
    annual_discount_rate: float | None = None,
) -> WhatIfResult:
    """Recompute the remaining CLV of ``customers`` and a new customer's value under each lever.

    Parameters
    ----------
    trained
        A trained model (:func:`clvmodel.load_model`): BG/NBD, MBG/NBD, Pareto/NBD or GGom/NBD
        scoring model (with Gamma-Gamma for values), or an sBG subscription model.
    customers
        The existing base: RFM rows (``customer_id, frequency, recency, T[, monetary_value]``) or a
        :class:`clvmodel.predict.ScoreInput` (what ``clvmodel score`` reads: RFM rows or a
        transaction log summarised as of a date); for an sBG model ``customer_id, renewals``.
        The model does not keep its training summary (a trained model holds no customer data),
        so the base is always given.
    retention, frequency, order_value
        ``"+5pp"`` / ``"+5%"`` (retention), ``"+10%"`` (frequency, order value), or a
        :class:`Lever`; ``None``: not pulled. See the module docstring for what each scales.
    horizon, discount_rate, margin
        ``None``: the model's CLV settings (:func:`clvmodel.acquisition.settings` checks them).
    cac, target_ratio
        A new customer's acquisition cost (one for every channel; ``None``: no LTV:CAC) and the
        LTV:CAC to reach (3): ``ltv_cac = value / cac``, ``max_allowable_cac = value / target_ratio``.

    Returns
    -------
    WhatIfResult
        Scenarios ``baseline``, each lever alone, ``all`` (two levers or more) and ``claim``
        (+5 points of one-year retention, the seeds' "5 % retention → 25–95 % profit"; absent,
        with ``claim_error``, when +5 points cannot be reached).

    Raises
    ------
    ClvError
        One line: an unreadable lever, a retention target that cannot be reached, a lever that
        does not apply to the model, a bad setting.
    """
    from clvmodel.acquisition import settings

    levers = [lever if isinstance(lever, Lever) or lever is None else parse_lever(lever, name)
              for name, lever in (("retention", retention), ("frequency", frequency), ("order_value", order_value))]
    pulled = [lever for lever in levers if lever is not None]
    cac_f = _number(cac, "cac")
    ratio = _number(3.0 if target_ratio is None else target_ratio, "target ratio")
    if trained.subscription:
        if levers[1] is not None:
            raise ClvError("--frequency does not apply to a subscription (sBG) model: a subscriber pays once a period")
        if horizon is not None:
            raise ClvError("--horizon does not apply to a subscription (sBG) model: it values the whole expected "
                           "lifetime (DERL)")
    # A horizon with its unit ("3 years") and an annual rate, in the model's unit (clvmodel.units).
    used = resolve(trained.time_unit, horizon, discount_rate, annual_discount_rate, defaults=defaults_of(trained))
    horizon, discount_rate = (1 if trained.subscription else used.periods), used.discount_rate
    horizon_i, rate, margin_f = settings(trained, horizon, discount_rate, margin)
    primary = trained.models.get(trained.primary) if trained.primary else None
    if primary is None:
        raise ClvError(f"model {trained.name!r} has no purchase model (historical only); what-if levers need one")
    _kind(primary)  # a family without levers: one line, before anything is computed
    solution = solve_retention(primary, trained.time_unit, levers[0]) if levers[0] is not None else None
    claim_lever = parse_lever(CLAIM, "retention")
    claim, claim_error = None, None
    if solution is not None and solution.lever.unit == "pp" and solution.lever.amount == 5:
        claim = solution
    else:
        try:
            claim = solve_retention(primary, trained.time_unit, claim_lever)
        except ClvError as err:
            claim_error = str(err).removeprefix(f"{_OPTION['retention']} ")
    scenarios = [Scenario("baseline", "no lever")]
    factors = {"retention": 1.0, "frequency": 1.0, "order_value": 1.0}
    for lever in pulled:
        factor = solution.scale if lever.name == "retention" else lever.factor  # type: ignore[union-attr]
        factors[lever.name] = factor
        scenarios.append(Scenario(lever.name, lever.text, **{_FIELD[lever.name]: factor}))
    if len(pulled) > 1:
        scenarios.append(Scenario("all", ", ".join(lever.text for lever in pulled),
                                  retention_scale=factors["retention"], frequency=factors["frequency"],
                                  order_value=factors["order_value"]))
    if claim is not None and claim is not solution:
        scenarios.append(Scenario("claim", f"{CLAIM} retention", retention_scale=claim.scale))

    baseline_scores = _base_values(trained, customers, scenarios[0], horizon_i, rate)
    ok = baseline_scores["status"].astype(str).eq("ok").to_numpy()
    segment = (baseline_scores["segment"].astype(str).to_numpy() if "segment" in baseline_scores.columns
               else np.full(len(baseline_scores), "all", dtype=object))
    rows: list[dict[str, Any]] = []
    base_before: dict[str, float] = {}
    new_before: pd.DataFrame | None = None
    for scenario in scenarios:
        scores = baseline_scores if scenario.name == "baseline" else _base_values(
            trained, customers, scenario, horizon_i, rate)
        revenue = scores["predicted_clv"].to_numpy(dtype=float)
        # A new customer's one-year retention under every scaling: with BG/NBD and MBG/NBD the
        # frequency lever moves it too (each purchase is a chance to drop out).
        retained = one_year_retention(new_customer_model(trained, scenario).models[trained.primary],
                                      trained.time_unit)
        groups = [("total", BASE, ok)] + [(name, SEGMENT, ok & (segment == name)) for name in _segments(segment[ok])]
        for group, scope, mask in groups:
            total = float(revenue[mask].sum())
            key = f"{scope}:{group}"
            base_before.setdefault(key, total)
            rows.append(_row(scenario, scope, group, int(mask.sum()), retained, base_before[key], total, margin_f))
        new = _new_values(trained, scenario, horizon_i, rate)
        if new is not None:
            new_before = new if new_before is None else new_before
            for i, channel in enumerate(new["channel"]):
                row = _row(scenario, ACQUISITION, channel, new["customers"].iloc[i], retained,
                           float(new_before["value"].iloc[i]), float(new["value"].iloc[i]), margin_f)
                row["ltv_cac"] = row["profit"] / cac_f if cac_f is not None else math.nan
                row["max_allowable_cac"] = row["profit"] / ratio  # type: ignore[operator]
                rows.append(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["customers"] = table["customers"].astype("Int64")
    return WhatIfResult(
        model=trained.name, purchase_model=str(trained.primary), time_unit=trained.time_unit, horizon=horizon_i,
        discount_rate=rate, margin=margin_f, levers=pulled, scenarios=scenarios, retention=solution, claim=claim,
        claim_error=claim_error, table=table, customers=int(ok.sum()), unscored=int((~ok).sum()), cac=cac_f,
        target_ratio=float(ratio),  # type: ignore[arg-type]
    )


_FIELD = {"retention": "retention_scale", "frequency": "frequency", "order_value": "order_value"}


def _segments(labels: np.ndarray) -> list[str]:
    """The segments present, in :data:`clvmodel.segments.SEGMENTS` order (others after, sorted)."""
    from clvmodel.segments import SEGMENTS

    present = set(labels.tolist())
    return [s for s in SEGMENTS if s in present] + sorted(present - set(SEGMENTS))


def _row(scenario: Scenario, scope: str, group: str, customers: Any, retained: float, before: float, after: float,
         margin: float) -> dict[str, Any]:
    change = margin * (after - before)
    return {
        "scenario": scenario.name, "levers": scenario.label, "scope": scope, "group": group,
        "customers": customers, "one_year_retention": retained,
        "baseline_revenue": before, "revenue": after, "baseline_profit": margin * before, "profit": margin * after,
        "profit_change": change,
        "pct_change": 100.0 * (after - before) / before if before else (0.0 if after == before else math.nan),
        "ltv_cac": math.nan, "max_allowable_cac": math.nan,
    }


# --- the report -------------------------------------------------------------------------------


def _money(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:,.2f}"


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:+.1f}%"


def _unit(result: WhatIfResult, count: float) -> str:
    return f"{count:g} {result.time_unit}{'' if count == 1 else 's'}"


def render(result: WhatIfResult) -> str:
    """The text ``clvmodel whatif`` prints."""
    lines = [f"clvmodel whatif: {result.model} ({result.purchase_model}; horizon {_unit(result, result.horizon)}, "
             f"discount rate {result.discount_rate:g} per {result.time_unit}, margin {result.margin:g})"]
    year = YEAR.get(result.time_unit, 0)
    solution = result.retention
    if solution is not None:
        lines.append(f"  one-year retention of a new customer ({_unit(result, year)}): {solution.before:.2%} -> "
                     f"{solution.after:.2%} ({solution.lever.text}; mean dropout x {solution.scale:.4f})")
    base = result.rows(BASE, "total")
    if not np.isfinite(base["profit"].to_numpy(dtype=float)).any():
        lines.append("  no values: neither the input (monetary_value) nor the model (a spend model) has amounts; "
                     "give monetary_value or train with amounts")
    lines.append(f"  existing base: {result.customers:,} customers"
                 + (f" ({result.unscored:,} not scored, left out)" if result.unscored else "")
                 + f", remaining profit {_money(float(base['profit'].iloc[0]))} (baseline)")
    new = result.table[result.table["scope"] == ACQUISITION]
    header = f"    {'scenario':<12} {'levers':<22} {'base profit':>14} {'change':>12} {'%':>8}"
    if len(new):
        header += f" {'new customer':>13} {'%':>8}"
    lines += ["  profit under each lever (base: remaining over the horizon; new customer: acquisition value, "
              "customer-weighted mean over channels)", header]
    for scenario in result.scenarios:
        row = base.loc[scenario.name]
        line = (f"    {scenario.name:<12} {scenario.label[:22]:<22} {_money(row['profit']):>14} "
                f"{_money(row['profit_change']):>12} {_pct(row['pct_change']):>8}")
        if len(new):
            before, after = _mean_new(result, "baseline"), _mean_new(result, scenario.name)
            line += f" {_money(after):>13} {_pct(100 * (after - before) / before if before else math.nan):>8}"
        lines.append(line)
    segments = result.table[result.table["scope"] == SEGMENT]
    if len(segments) and len(result.scenarios) > 1:
        names = list(dict.fromkeys(segments["group"]))
        lines.append("  base remaining profit by segment (segments as scored by the fitted model), % change")
        lines.append(f"    {'scenario':<12}" + "".join(f" {name:>10}" for name in names))
        for scenario in result.scenarios[1:]:
            own = segments[segments["scenario"] == scenario.name].set_index("group")
            lines.append(f"    {scenario.name:<12}" + "".join(f" {_pct(own.loc[n, 'pct_change']):>10}" for n in names))
    if len(new):
        lines.append("  a new customer by channel (acquisition value at the margin"
                     + (f"; LTV:CAC at CAC {result.cac:,.2f}" if result.cac is not None else "")
                     + f"; max allowable CAC at {result.target_ratio:g}:1)")
        for scenario in result.scenarios:
            own = new[new["scenario"] == scenario.name]
            parts = [f"{row.group} {_money(row.profit)} ({_pct(row.pct_change)}"
                     + (f", LTV:CAC {row.ltv_cac:.2f}" if result.cac is not None else "")
                     + f", max CAC {_money(row.max_allowable_cac)})" for row in own.itertuples()]
            lines.append(f"    {scenario.name:<12} " + "; ".join(parts))
    lines.append(_claim_line(result))
    return "\n".join(lines)


def _mean_new(result: WhatIfResult, scenario: str) -> float:
    """A new customer's value (profit), weighted by the channels' customers in training."""
    rows = result.table[(result.table["scope"] == ACQUISITION) & (result.table["scenario"] == scenario)]
    weights = rows["customers"].astype(float).fillna(0.0).to_numpy()
    values = rows["profit"].to_numpy(dtype=float)
    if not weights.sum() > 0:
        return float(values.mean()) if len(values) else math.nan
    return float((weights * values).sum() / weights.sum())


def _claim_line(result: WhatIfResult) -> str:
    """The seeds' "5 % retention → 25–95 % profit", against this model's own figure."""
    start = '  the seeds\' claim "5 % more retention -> 25-95 % more profit": '
    if result.claim is None:
        return start + f"not computable on this model ({result.claim_error})"
    name = "retention" if result.claim is result.retention else "claim"
    base = result.rows(BASE, "total").loc[name, "pct_change"]
    text = (start + f"on this model +5 points of one-year retention ({result.claim.before:.1%} -> "
            f"{result.claim.after:.1%}) change the base's remaining profit over {_unit(result, result.horizon)} by "
            f"{_pct(base)}")
    if (result.table["scope"] == ACQUISITION).any():
        before, after = _mean_new(result, "baseline"), _mean_new(result, name)
        text += f" and a new customer's value by {_pct(100 * (after - before) / before if before else math.nan)}"
    if not math.isfinite(base):
        return text + " (no values: no amounts)"
    verdict = "inside" if 25 <= base <= 95 else "outside"
    return text + f": {verdict} the 25-95 % range for the base"


# --- files, chart and run: what the CLI calls ---------------------------------------------------


def tornado_chart(result: WhatIfResult) -> Any:
    """The levers alone and together ranked by their % change of profit (:func:`clvmodel.plots.tornado`)."""
    from clvmodel import plots

    shown = [s for s in result.scenarios if s.name not in ("baseline", "claim")]
    if not shown and result.claim is not None:
        shown = [s for s in result.scenarios if s.name == "claim"]
    base = result.rows(BASE, "total")
    labels = [f"{s.name} {s.label}" if s.name != "all" else f"all ({s.label})" for s in shown]
    panels = {f"existing base: remaining profit over {_unit(result, result.horizon)}":
              pd.Series([float(base.loc[s.name, "pct_change"]) for s in shown], index=labels)}
    if (result.table["scope"] == ACQUISITION).any():
        before = _mean_new(result, "baseline")
        panels["a new customer: acquisition value (mean over channels)"] = pd.Series(
            [100 * (_mean_new(result, s.name) - before) / before if before else math.nan for s in shown], index=labels)
    return plots.tornado(panels, title=f"what-if levers on {result.model} ({result.purchase_model})")


@dataclass
class WhatIfFiles:
    """What :func:`whatif_files` did: the result, the files written, the MLflow run."""

    result: WhatIfResult
    written: list[Any] = field(default_factory=list)
    run_id: str | None = None


def whatif_files(
    model: str,
    input_: str,
    output: Any,
    *,
    retention: str | None = None,
    frequency: str | None = None,
    order_value: str | None = None,
    horizon: int | str | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
    cac: float | None = None,
    target_ratio: float = 3.0,
    as_of: Any = None,
    annual_discount_rate: float | None = None,
    experiment: str | None = None,
) -> WhatIfFiles:
    """``clvmodel whatif`` on files: read the base, run :func:`whatif`, write the table and chart, log.

    The levers are read first and the output is checked against the input before anything is
    read, so a bad lever or an impossible target writes nothing. The table (CSV or Parquet, the
    columns of :data:`COLUMNS`) goes to ``output``, the tornado chart beside it (``.png``); with
    ``experiment`` both, the printed report and the metrics are logged to that MLflow experiment
    (:mod:`clvmodel.integrations.mlflow_tracking`; ``MLFLOW_TRACKING_URI`` names the store).
    """
    from pathlib import Path

    from clvmodel import io
    from clvmodel import load_model

    levers = {name: parse_lever(text, name) if text is not None else None
              for name, text in (("retention", retention), ("frequency", frequency), ("order_value", order_value))}
    output = Path(output)
    chart = output.with_suffix(".png")
    if output.suffix.lower() not in {".csv", ".parquet", ".pq"}:
        raise ClvError(f"--output {output}: unknown extension {output.suffix!r}; use .csv or .parquet")
    io.refuse_overwrite({"--output": output, "the chart": chart}, [("--input", input_)])
    trained = load_model(model)
    if trained.subscription:
        if as_of is not None:
            raise ClvError("--as-of does not apply to a subscription (sBG) model; pass renewals per customer")
        customers: Any = io.read_table(Path(input_))
    else:
        from clvmodel.predict import read_input

        customers = read_input(trained, input_, as_of=as_of)
    result = whatif(trained, customers, **levers, horizon=horizon, discount_rate=discount_rate, margin=margin,
                    cac=cac, target_ratio=target_ratio, annual_discount_rate=annual_discount_rate)
    io.write_table(result.table, output)
    io.write_figure(tornado_chart(result), chart)
    done = WhatIfFiles(result, [output, chart])
    if experiment:
        from clvmodel.integrations import mlflow_tracking as tracking

        with tracking.run(experiment, run_name=f"whatif/{trained.name}", tags={"clvmodel.command": "whatif"}) as run_id:
            tracking.log_params({"model": str(model), "input": str(input_), "retention": retention,
                                 "frequency": frequency, "order_value": order_value, "horizon": result.horizon,
                                 "discount_rate": result.discount_rate, "margin": result.margin, "cac": cac,
                                 "target_ratio": result.target_ratio})
            tracking.log_metrics(_metrics(result))
            for path in done.written:
                tracking.log_artifact(path)
            tracking.log_text(render(result), "whatif_report.txt")
        done.run_id = run_id
    return done


def _metrics(result: WhatIfResult) -> dict[str, float]:
    """Per scenario: the base's profit change and %, a new customer's %; one-year retention."""
    metrics: dict[str, float] = {}
    base = result.rows(BASE, "total")
    has_new = (result.table["scope"] == ACQUISITION).any()
    before = _mean_new(result, "baseline") if has_new else math.nan
    for scenario in result.scenarios:
        row = base.loc[scenario.name]
        metrics[f"whatif.{scenario.name}.base_profit"] = float(row["profit"])
        metrics[f"whatif.{scenario.name}.base_pct_change"] = float(row["pct_change"])
        metrics[f"whatif.{scenario.name}.one_year_retention"] = float(row["one_year_retention"])
        if has_new:
            after = _mean_new(result, scenario.name)
            metrics[f"whatif.{scenario.name}.new_customer_value"] = after
            change = 100 * (after - before) / before if before else math.nan
            metrics[f"whatif.{scenario.name}.new_customer_pct_change"] = change
    if result.retention is not None:
        metrics["whatif.retention.dropout_scale"] = result.retention.scale
    return metrics
