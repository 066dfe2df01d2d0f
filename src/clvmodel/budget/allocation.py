"""The acquisition budget allocation: :func:`allocate`.

Maximises expected CLV acquired (on margin) minus spend under each channel's response curve:
SLSQP with analytic gradients on spend measured in each channel's typical spend, then an exact
polish on the active set it found, and a check of the optimality (KKT) conditions rather than
SLSQP's word. The spending stop and the marginal LTV:CAC are explained in the docstring of
:mod:`clvmodel.budget`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq, minimize

from clvmodel.budget.cac_config import CacConfig, _num
from clvmodel.budget.channels import _check_channels_configured, _require_columns
from clvmodel.budget.tables import NOT_IN_MODEL
from clvmodel.errors import ClvError

# Share of the budget within which an allocation counts as at its bound (and is snapped to it):
# $0.10 of a $100,000 budget.
_SNAP = 1e-6


@dataclass(frozen=True)
class _Problem:
    """Allocation problem in spend units; arrays are per channel, in ``names`` order."""

    names: list[str]
    value: np.ndarray  # value of one acquired customer on margin: acquisition_value, or margin * mean_clv
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
            # A channel worth nothing has marginal 0, not 0 * inf at zero spend (np.where computes
            # both sides, so the product that is thrown away must not warn either).
            return np.where(self.value > 0, self.value * slope, 0.0)


def _customer_values(channel_stats: pd.DataFrame, config: CacConfig) -> dict[str, float]:
    """Value of one acquired customer per channel, on margin: ``acquisition_value`` when the table
    has it (a channel-aware model), else ``margin * mean_clv`` (remaining CLV of existing customers)."""
    names = channel_stats["channel"].astype(str)
    if "acquisition_value" in channel_stats.columns:
        return dict(zip(names, channel_stats["acquisition_value"].astype(float)))
    return dict(zip(names, config.margin * channel_stats["mean_clv"].astype(float)))


def _build_problem(channel_stats: pd.DataFrame, config: CacConfig) -> tuple[_Problem, list[str]]:
    value_column = "acquisition_value" if "acquisition_value" in channel_stats.columns else "mean_clv"
    _require_columns(
        channel_stats, ["channel", value_column], "channel_stats", "pass channel_table's output"
    )
    _check_channels_configured(channel_stats["channel"].astype(str), config)
    notes: list[str] = []
    names = list(config.channels)
    per_customer = _customer_values(channel_stats, config)
    unseen = (set(channel_stats.loc[channel_stats["verdict"] == NOT_IN_MODEL, "channel"].astype(str))
              if "verdict" in channel_stats.columns else set())
    value, ks, betas, lower, upper = [], [], [], [], []
    for name in names:
        ch = config.channels[name]
        m = float(per_customer.get(name, float("nan")))
        if not np.isfinite(m):
            # No evidence of value: the channel gets its min_spend and nothing more (a channel the
            # model has never seen is said once, with its verdict, by run_budget).
            if name not in unseen:
                why = ("the model has no acquisition value for it" if "acquisition_value" in channel_stats.columns
                       else "no customers in the scores")
                notes.append(f"{name}: {why}, so it gets only its min_spend")
            m = 0.0
        k, b = ch.curve()
        value.append(max(m, 0.0))
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
    # A channel the model never saw has no value: what its spend buys is unknown, not 0.
    unseen = frame["channel"].isin(
        channel_stats.loc[channel_stats["verdict"] == NOT_IN_MODEL, "channel"].astype(str)
        if "verdict" in channel_stats.columns else [])
    frame.loc[unseen, ["expected_clv", "marginal_ltv_cac"]] = np.nan
    frame["expected_net_value"] = frame["expected_clv"] - frame["allocated_spend"]
    for row in frame[~unseen].itertuples():
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

        max_s  sum_c [ V_c * customers_c(s_c) - s_c ]
        s.t.   sum_c s_c <= budget,   min_spend_c <= s_c <= min(max_spend_c, budget)

    with ``customers_c(s) = k_c * s ** beta_c`` (linear channels: ``k = 1 / cac``, ``beta = 1``)
    and ``V_c`` the value of one acquired customer on margin: the channel's
    ``acquisition_value`` when ``channel_stats`` has that column (a model trained with a
    channel), else ``margin * mean_clv`` (the remaining CLV of existing customers, not the value
    of a new customer). A channel without a value (no customers in the scores, or not in the
    model) gets its ``min_spend`` only. The objective is expected value acquired minus spend, so
    spending stops where the marginal LTV:CAC drops below 1 (part of the budget may stay
    unspent) unless ``min_spend`` forces it.

    Returns
    -------
    DataFrame
        One row per configured channel: ``channel, allocated_spend, expected_customers,
        expected_clv`` (margin basis, ``V_c * expected_customers``),
        ``marginal_ltv_cac`` (``V_c * dcustomers/dspend`` at the optimum; linear
        channels ``V_c / cac``; a concave channel left at 0 is evaluated at
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
