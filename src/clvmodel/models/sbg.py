"""Shifted-beta-geometric (sBG) retention model for contractual (subscription) settings.

References
----------
.. [FH07] Fader, P. S. and Hardie, B. G. S. (2007), "How to project customer retention",
   *Journal of Interactive Marketing* 21(1), 76-90.
.. [FH10] Fader, P. S. and Hardie, B. G. S. (2010), "Customer-base valuation in a contractual
   setting: the perils of ignoring heterogeneity", *Marketing Science* 29(1), 85-93.

The story of [FH07]: at the end of every period a customer renews with her own constant probability
``1 - theta`` and, once lapsed, never returns; ``theta`` is Beta(alpha, beta) distributed across
customers. ``T`` is the period in which a customer churns (``T = 1``: she never renews), so a
customer who has made ``k`` renewals and then churned has ``T = k + 1``, and one still active after
``k`` renewals contributes the survivor function ``S(k) = P(T > k)``.

Conventions used throughout (they match [FH07]'s tables):

* ``survivors[t]`` = customers active at the start of period ``t`` (``t = 0..n``), i.e. who made
  ``t`` renewals; ``survivors[0]`` is the cohort size and the expected value of ``survivors[t]`` is
  ``survivors[0] * S(t)``.
* ``periods_survived`` = number of renewals made (complete periods survived); ``churned`` False
  means still active, i.e. right-censored.

All probabilities are computed in log space with :func:`scipy.special.betaln` (the beta functions
of the sBG under- and overflow long before the ratios do). Equation numbers of the papers are not
quoted here because they could not be checked against the published text; quantities are named
instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betaln, digamma, hyp2f1

from clvmodel.errors import ClvError, ConvergenceFailure
from clvmodel.models import mle
from clvmodel.models.base import ModelData

__all__ = ["ShiftedBetaGeometric", "durations_from_subscriptions", "projection_table", "PERIODS"]

#: Period names accepted by :func:`durations_from_subscriptions`.
PERIODS = ("day", "week", "month", "year")

_METHODS = ("L-BFGS-B", "Nelder-Mead")
# The optimiser works on (log alpha, log beta) within +-_LOG_BOUND. Some data have no maximum: the
# likelihood keeps rising towards alpha, beta -> infinity (no heterogeneity: a constant retention
# rate fits best) or towards alpha or beta -> 0 (churn probabilities piled up at 0 or 1, e.g.
# everyone churning at the first renewal). The optimiser then stops somewhere far out on a flat
# ridge, not necessarily at the bound, and where it stops depends on the machine. Such data are
# recognised by the likelihood instead: a stop that does not beat the supremum over the boundary
# (_Counts.limit_log_likelihood) by mle.RIDGE_GAIN is reported as a failure rather than a fit.
_LOG_BOUND = 15.0
# A failed stop beyond e^±_FAR_OUT that does not beat the boundary is named a degenerate limit
# rather than an optimiser failure (wording only: both are failures).
_FAR_OUT = 10.0
# Largest |gradient| of the per-customer objective (in log alpha, log beta) taken as a stationary point.
_GRAD_TOL = 1e-6


def _as_result(values: NDArray[np.float64]) -> float | NDArray[np.float64]:
    """A float for a scalar input, the array otherwise."""
    return float(values) if np.ndim(values) == 0 else values


class _Counts:
    """Sufficient statistics of duration data: how many customers churned in period ``T`` and how
    many are still active after ``k`` renewals. Both fit methods reduce to this, so they maximise
    the very same likelihood."""

    def __init__(self, churn_t: NDArray[Any], churn_w: NDArray[Any], alive_k: NDArray[Any], alive_w: NDArray[Any]):
        self.churn_t = churn_t.astype(float)
        self.churn_w = churn_w.astype(float)
        self.alive_k = alive_k.astype(float)
        self.alive_w = alive_w.astype(float)
        self.n = int(round(self.churn_w.sum() + self.alive_w.sum()))

    def log_likelihood(self, alpha: float, beta: float) -> float:
        """Sum of ``log P(T = t)`` over churners and ``log S(k)`` over active customers [FH07]."""
        base = betaln(alpha, beta)
        ll_churn = self.churn_w @ (betaln(alpha + 1.0, beta + self.churn_t - 1.0) - base)
        ll_alive = self.alive_w @ (betaln(alpha, beta + self.alive_k) - base)
        return float(ll_churn + ll_alive)

    def limit_log_likelihood(self) -> float:
        """Supremum of the log-likelihood over the limits of Beta(alpha, beta) at the boundary.

        As alpha, beta -> infinity (ratio fixed), or one of them -> 0, the churn probability θ
        collapses to one value (geometric durations): ``C ln θ + E ln(1 − θ)``, largest at
        ``θ = C / (C + E)``, with ``C`` churners and ``E`` survived periods. As both -> 0 (ratio
        fixed) θ is 1 with probability π and 0 otherwise: everyone churns at the first renewal or
        never, ``C₁ ln π + A ln(1 − π)`` with ``C₁`` first-renewal churners and ``A`` customers
        seen to renew, possible only if nobody churned later. Closed forms: no optimiser, no last bits.
        """
        churned = float(self.churn_w.sum())
        exposed = float(self.churn_w @ (self.churn_t - 1.0) + self.alive_w @ self.alive_k)
        best = churned * np.log(churned / (churned + exposed)) + (
            exposed * np.log(exposed / (churned + exposed)) if exposed > 0 else 0.0
        )
        if not np.any(self.churn_w[self.churn_t >= 2] > 0):
            first = float(self.churn_w[self.churn_t == 1].sum())
            renewed = float(self.alive_w[self.alive_k >= 1].sum())
            two_point = first * np.log(first / (first + renewed)) + (
                renewed * np.log(renewed / (first + renewed)) if renewed > 0 else 0.0
            )
            best = max(best, two_point)
        return float(best)

    def gradient(self, alpha: float, beta: float) -> NDArray[np.float64]:
        """Analytic gradient of :meth:`log_likelihood` in (alpha, beta), from
        d/da log B(a, b) = digamma(a) - digamma(a + b) and likewise for b."""
        # Written so that no large digamma values cancel (digamma(a) ~ -1/a for small a):
        # digamma(alpha + 1) - digamma(alpha) = 1 / alpha exactly.
        ab = digamma(alpha + beta)
        c_ab = digamma(alpha + beta + self.churn_t)  # churners: log B(alpha + 1, beta + t - 1) - log B(alpha, beta)
        c_a = 1.0 / alpha + ab - c_ab
        c_b = digamma(beta + self.churn_t - 1.0) - digamma(beta) + ab - c_ab
        s_ab = digamma(alpha + beta + self.alive_k)  # active: log B(alpha, beta + k) - log B(alpha, beta)
        s_a = ab - s_ab
        s_b = digamma(beta + self.alive_k) - digamma(beta) + ab - s_ab
        return np.array([self.churn_w @ c_a + self.alive_w @ s_a, self.churn_w @ c_b + self.alive_w @ s_b])


def _validate_survivors(survivors: Sequence[int] | ArrayLike) -> NDArray[np.int64]:
    values = np.asarray(survivors, dtype=object).ravel()
    if values.size < 2:
        raise ClvError(
            "survivors needs at least 2 values (the cohort size, then the survivors at the start of period 1, ...), "
            f"got {values.size}"
        )
    try:
        counts = values.astype(float)
    except (TypeError, ValueError):
        raise ClvError(f"survivor counts must be numbers, got {list(values)[:5]!r}") from None
    for i, v in enumerate(counts):
        if not math.isfinite(v) or v != round(v):
            raise ClvError(f"survivor counts must be whole numbers: {values[i]!r} at period {i}")
    for i, v in enumerate(counts):
        if v < 0:
            raise ClvError(f"survivor counts must be non-negative: {int(v)} at period {i}")
    if counts[0] == 0:
        raise ClvError("the first survivor count is the cohort size and must be positive, got 0 at period 0")
    for i in range(1, counts.size):
        if counts[i] > counts[i - 1]:
            raise ClvError(
                f"survivor counts must not increase: {int(counts[i])} at period {i} "
                f"follows {int(counts[i - 1])} at period {i - 1}"
            )
    return counts.astype(np.int64)


def _validate_discount_rate(discount_rate: float) -> float:
    try:
        d = float(discount_rate)
    except (TypeError, ValueError):
        d = math.nan
    if not math.isfinite(d) or d < 0:
        raise ClvError(f"discount_rate must be a non-negative number per period (e.g. 0.1), got {discount_rate!r}")
    return d


def _validate_renewals(renewals: int | ArrayLike) -> NDArray[np.float64]:
    n = np.asarray(renewals, dtype=float)
    if not np.all(np.isfinite(n)) or np.any(n < 0) or np.any(n != np.round(n)):
        raise ClvError(f"renewals must be whole numbers >= 0, got {renewals!r}")
    return n


class ShiftedBetaGeometric:
    """Shifted-beta-geometric model of contract duration [FH07], estimated by maximum likelihood.

    Parameters
    ----------
    method : {"L-BFGS-B", "Nelder-Mead"}
        :func:`scipy.optimize.minimize` method. The optimiser works on ``(log alpha, log beta)``
        from the deterministic start ``alpha = beta = 1`` (a uniform distribution of churn
        probabilities); L-BFGS-B uses the analytic gradient.
    maxiter : int
        Iteration limit passed to the optimiser.

    Attributes
    ----------
    params_ : dict
        ``{"alpha": ..., "beta": ...}``, the parameters of the beta distribution of the per-period
        churn probability ``theta``.
    log_likelihood_ : float
        Log-likelihood at the estimate (natural log, all customers, no constant dropped).
    standard_errors_ : dict
        Asymptotic standard errors of alpha and beta: square roots of the diagonal of the inverse of
        the Hessian of the negative log-likelihood at the estimate, in the (alpha, beta) scale.
        The Hessian is numerical: central differences (relative step ``eps ** (1/3)``) of the
        analytic gradient, symmetrised. ``nan`` if that Hessian is not positive definite.
    n_ : int
        Number of customers the model was fitted on.
    converged_ : bool
        True after a fit (a failed fit raises :class:`~clvmodel.errors.ConvergenceFailure`).
    """

    #: The registry name (:mod:`clvmodel.models.registry`) and the parameters, in order.
    name = "sbg"
    param_names = ("alpha", "beta")

    def __init__(self, *, method: str = "L-BFGS-B", maxiter: int = 1000) -> None:
        # scikit-learn style: store options only; they are checked when fitting.
        self.method = method
        self.maxiter = maxiter

    # ----------------------------------------------------------------------------------- fitting
    def fit(self, data: ModelData) -> ShiftedBetaGeometric:
        """The family contract's ``fit``: survivor counts or per-subscriber durations, whichever ``data`` holds.

        See :meth:`fit_survivors` and :meth:`fit_durations`, which it calls.
        """
        if data.survivors is not None:
            return self.fit_survivors(data.survivors)
        if data.durations is not None:
            return self.fit_durations(*data.durations)
        raise ClvError("sbg is fitted on subscriptions (survivor counts or subscriber spells); this data has none")

    def fit_survivors(self, survivors: Sequence[int]) -> ShiftedBetaGeometric:
        """Fit to a cohort's survivor counts, as in [FH07]'s tables.

        Parameters
        ----------
        survivors : sequence of int
            Customers active at the start of periods ``0..n``; the first value is the cohort size.
            ``survivors[t-1] - survivors[t]`` customers churned with ``T = t``; the ``survivors[n]``
            still active are right-censored after ``n`` renewals.

        Returns
        -------
        ShiftedBetaGeometric
            ``self``, fitted.

        Raises
        ------
        ClvError
            Invalid counts, no churn at all, or only one period (which identifies
            ``beta / (alpha + beta)`` but not alpha and beta).
        ConvergenceFailure
            The optimiser failed, or the likelihood has no maximum (the estimate runs off towards
            alpha, beta -> infinity, i.e. no heterogeneity, or towards 0).
        """
        counts = _validate_survivors(survivors)
        lost = counts[:-1] - counts[1:]
        data = _Counts(np.arange(1, counts.size), lost, np.array([counts.size - 1]), counts[-1:])
        return self._fit(data)

    def fit_durations(self, periods_survived: ArrayLike, churned: ArrayLike) -> ShiftedBetaGeometric:
        """Fit to individual customers (see :func:`durations_from_subscriptions`).

        Parameters
        ----------
        periods_survived : array-like of int
            Renewals made by each customer (complete periods survived), >= 0.
        churned : array-like of bool
            True if the customer has churned (then ``T = periods_survived + 1``); False if still
            active (right-censored: contributes ``S(periods_survived)``).

        Returns
        -------
        ShiftedBetaGeometric
            ``self``, fitted.

        Raises
        ------
        ClvError, ConvergenceFailure
            As for :meth:`fit_survivors`.
        """
        k = np.asarray(periods_survived).ravel()
        c = np.asarray(churned).ravel()
        if k.size != c.size:
            raise ClvError(
                f"periods_survived has {k.size} values but churned has {c.size}; give one of each per customer"
            )
        if k.size == 0:
            raise ClvError("no customers to fit: periods_survived is empty")
        kf = pd.to_numeric(pd.Series(k), errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(kf) | (kf < 0) | (kf != np.round(kf))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ClvError(
                f"periods_survived must be whole numbers >= 0: {int(bad.sum())} are not "
                f"(e.g. {k.tolist()[i]!r} at position {i})"
            )
        if c.dtype != bool:
            as_num = pd.to_numeric(pd.Series(c), errors="coerce").to_numpy(dtype=float)
            bad = ~np.isin(as_num, (0.0, 1.0))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ClvError(
                    f"churned must be True/False: {int(bad.sum())} values are not "
                    f"(e.g. {c.tolist()[i]!r} at position {i})"
                )
            c = as_num == 1.0
        churn_t, churn_w = np.unique(kf[c] + 1.0, return_counts=True)
        alive_k, alive_w = np.unique(kf[~c], return_counts=True)
        return self._fit(_Counts(churn_t, churn_w, alive_k, alive_w))

    def _fit(self, data: _Counts) -> ShiftedBetaGeometric:
        if self.method not in _METHODS:
            raise ClvError(f"method must be one of {', '.join(_METHODS)}, got {self.method!r}")
        if data.churn_w.sum() == 0:
            raise ClvError(
                f"none of the {data.n} customers churned, so the churn probabilities cannot be estimated; "
                "fit on a longer history"
            )
        if max(data.churn_t.max(initial=0), data.alive_k.max(initial=0)) < 2:
            # Only T = 1 vs T > 1 is observed: the likelihood depends on alpha / (alpha + beta) alone.
            raise ClvError(
                "the data only cover the first renewal, which fixes the first retention rate but not alpha and beta "
                "separately; give at least 2 periods of history (3 survivor counts)"
            )

        # Minimise the *mean* negative log-likelihood over (log alpha, log beta): the log removes the
        # positivity constraint and the mean keeps tolerances independent of the cohort size.
        scale = 1.0 / data.n

        def objective(u: NDArray[np.float64]) -> float:
            a, b = np.exp(u)
            return -data.log_likelihood(a, b) * scale

        def jacobian(u: NDArray[np.float64]) -> NDArray[np.float64]:
            ab = np.exp(u)
            return -data.gradient(*ab) * ab * scale  # chain rule: d/du = x * d/dx

        bounds = [(-_LOG_BOUND, _LOG_BOUND)] * 2
        if self.method == "L-BFGS-B":
            # Tight tolerances on the per-customer objective: the defaults stop ~1e-4 (relative)
            # short of the optimum on some data, visible at the published 3 decimals.
            options: dict[str, Any] = {"maxiter": self.maxiter, "ftol": 1e-13, "gtol": 1e-9}
            result = minimize(objective, np.zeros(2), jac=jacobian, method="L-BFGS-B", bounds=bounds, options=options)
        else:
            options = {"maxiter": self.maxiter, "xatol": 1e-10, "fatol": 1e-14}
            result = minimize(objective, np.zeros(2), method="Nelder-Mead", bounds=bounds, options=options)
        # With tolerances this tight L-BFGS-B sometimes stops with "ABNORMAL" (its line search finds no
        # decrease) when it is already at the optimum to rounding noise; the analytic gradient tells
        # the two cases apart, so such a stop counts as converged only if the gradient is ~0.
        at_optimum = self.method == "L-BFGS-B" and float(np.max(np.abs(jacobian(result.x)))) < _GRAD_TOL
        converged = bool(result.success or at_optimum)
        # Degenerate data: the likelihood has no maximum, only a supremum at the boundary. Where the
        # optimiser stops on that ridge depends on the last bits of the machine and on the start
        # (measured on constant 70% retention: max |ln alpha|, |ln beta| from 9.7 to 15, so the
        # former rule "beyond e^10" reported some stops as fits); whether the stop beats the
        # boundary's supremum does not. The margin mle.RIDGE_GAIN is far above the rounding of this
        # likelihood far out on the ridge (betaln differences: ~1e-5 at alpha ~ e^15) and far below
        # any heterogeneity a likelihood-ratio test could detect.
        stop = data.log_likelihood(*np.exp(result.x))
        no_better = np.all(np.isfinite(result.x)) and not stop >= data.limit_log_likelihood() + mle.RIDGE_GAIN
        # On a flat ridge the optimiser may also report failure, and its suggestion (another method,
        # more iterations) would not help: far out, the degenerate limit is the message. Which of
        # the two failures is named does not decide anything: neither stop is reported as a fit.
        if no_better and (converged or np.max(np.abs(result.x)) > _FAR_OUT):
            raise ConvergenceFailure(
                "sBG fit did not converge: the estimate ran off towards a degenerate limit (no heterogeneity in "
                "churn, or churn probabilities piled up at 0 or 1) and no alpha, beta beats that limit's likelihood; "
                "check the data or use more periods"
            )
        if not converged:
            raise ConvergenceFailure(
                f"sBG fit did not converge ({self.method}: {result.message}); "
                f"try method='{'Nelder-Mead' if self.method == 'L-BFGS-B' else 'L-BFGS-B'}' or a larger maxiter"
            )
        alpha, beta = (float(v) for v in np.exp(result.x))
        self.params_ = {"alpha": alpha, "beta": beta}
        self.log_likelihood_ = data.log_likelihood(alpha, beta)
        self.standard_errors_ = _standard_errors(data, alpha, beta)
        self.n_ = data.n
        self.converged_ = True
        return self

    def _params(self) -> tuple[float, float]:
        if not hasattr(self, "params_"):
            raise ClvError(f"{type(self).__name__} is not fitted; call fit_survivors(...) or fit_durations(...) first")
        return self.params_["alpha"], self.params_["beta"]

    # ------------------------------------------------------------------------------- projections
    def survival(self, t: ArrayLike) -> float | NDArray[np.float64]:
        """Survivor function ``S(t) = P(T > t) = B(alpha, beta + t) / B(alpha, beta)`` [FH07].

        Parameters
        ----------
        t : array-like of float
            Renewals (``t >= 0``); ``S(0) = 1``.

        Returns
        -------
        float or ndarray
            Probability that a newly acquired customer is still active after ``t`` renewals.
        """
        alpha, beta = self._params()
        tt = np.asarray(t, dtype=float)
        if not np.all(tt >= 0):
            raise ClvError(f"survival needs t >= 0, got {t!r}")
        return _as_result(np.exp(betaln(alpha, beta + tt) - betaln(alpha, beta)))

    def retention_rate(self, t: ArrayLike) -> float | NDArray[np.float64]:
        """Cohort retention rate ``r(t) = S(t) / S(t-1) = (beta + t - 1) / (alpha + beta + t - 1)`` [FH07].

        It rises with ``t`` although no individual's churn probability changes: the customers most
        likely to churn leave first.

        Parameters
        ----------
        t : array-like of float
            Renewal opportunity, ``t >= 1``.

        Returns
        -------
        float or ndarray
            Probability that a customer who has made ``t - 1`` renewals makes the ``t``-th, i.e. the
            expected ``survivors[t] / survivors[t-1]``.
        """
        alpha, beta = self._params()
        tt = np.asarray(t, dtype=float)
        if not np.all(tt >= 1):
            raise ClvError(f"retention_rate needs t >= 1 (the first renewal opportunity), got {t!r}")
        return _as_result((beta + tt - 1.0) / (alpha + beta + tt - 1.0))

    def expected_survivors(self, cohort_size: float, periods: int) -> NDArray[np.float64]:
        """Expected customers active at the start of periods ``0..periods``: ``cohort_size * S(t)``.

        Parameters
        ----------
        cohort_size : float
            Customers acquired at the start of period 0.
        periods : int
            Last period to project.

        Returns
        -------
        ndarray
            ``periods + 1`` values, the first equal to ``cohort_size``.
        """
        if not (isinstance(periods, (int, np.integer)) and periods >= 0):
            raise ClvError(f"periods must be a whole number >= 0, got {periods!r}")
        if not (math.isfinite(float(cohort_size)) and cohort_size > 0):
            raise ClvError(f"cohort_size must be positive, got {cohort_size!r}")
        return float(cohort_size) * np.asarray(self.survival(np.arange(periods + 1)))

    def discounted_expected_residual_lifetime(
        self, discount_rate: float, renewals: int | ArrayLike = 0
    ) -> float | NDArray[np.float64]:
        """Discounted expected residual lifetime (DERL) of [FH10], closed form.

        Convention (that of [FH10]): the customer has made ``n = renewals`` renewals, i.e. has paid
        for periods ``0..n``, and we stand at the end of her current period, just before her next
        renewal decision. DERL counts that upcoming payment undiscounted, weighted by the
        probability that it is made, and each later one discounted by a further period::

            DERL = sum_{t > n} S(t) / S(n) / (1 + d) ** (t - n - 1)
                 = B(alpha, beta + n + 1) / B(alpha, beta + n)
                   * 2F1(1, beta + n + 1; alpha + beta + n + 1; 1 / (1 + d))

        ([FH10] write it for a customer with ``n - 1`` renewals; their ``n`` is ``renewals + 1``.)
        It follows from the individual-level value ``(1 - theta)(1 + d) / (d + theta)`` averaged
        over the posterior ``theta ~ Beta(alpha, beta + n)`` of a customer who survived ``n``
        renewals. The value of a customer not yet acquired, counting her first payment, is
        ``1 + DERL(renewals=0) / (1 + d)``.

        Parameters
        ----------
        discount_rate : float
            Discount rate per period, ``d >= 0``.
        renewals : int or array-like of int
            Renewals already made (vectorised, e.g. one value per customer of a customer base).

        Returns
        -------
        float or ndarray
            Expected number of discounted future payments.
        """
        alpha, beta = self._params()
        d = _validate_discount_rate(discount_rate)
        n = _validate_renewals(renewals)
        if d == 0 and alpha <= 1:
            # 2F1 at z = 1 converges only if c - a - b = alpha - 1 > 0: otherwise the undiscounted
            # expected lifetime is infinite.
            raise ClvError(
                f"DERL is infinite without discounting when alpha <= 1 (alpha={alpha:.4g}); "
                "use a positive discount_rate"
            )
        b = beta + n
        ratio = np.exp(betaln(alpha, b + 1.0) - betaln(alpha, b))
        return _as_result(ratio * hyp2f1(1.0, b + 1.0, alpha + b + 1.0, 1.0 / (1.0 + d)))

    def subscription_clv(
        self, fee: float, margin: float, discount_rate: float, renewals: int | ArrayLike = 0
    ) -> float | NDArray[np.float64]:
        """Expected residual value of a subscriber: ``fee * margin * DERL``.

        Same convention as :meth:`discounted_expected_residual_lifetime`: value, at her next renewal
        decision, of the payments still to come from a customer who has made ``renewals`` renewals
        (payments already made are excluded).

        Parameters
        ----------
        fee : float
            Payment per period, >= 0.
        margin : float
            Profit margin on the fee, in [0, 1].
        discount_rate : float
            Discount rate per period, >= 0.
        renewals : int or array-like of int
            Renewals already made.

        Returns
        -------
        float or ndarray
            Expected discounted margin.
        """
        if not (math.isfinite(float(fee)) and fee >= 0):
            raise ClvError(f"fee must be a non-negative number, got {fee!r}")
        if not (0 <= float(margin) <= 1):
            raise ClvError(f"margin must be a fraction between 0 and 1 (e.g. 0.3), got {margin!r}")
        derl = self.discounted_expected_residual_lifetime(discount_rate, renewals)
        return _as_result(float(fee) * float(margin) * np.asarray(derl))

    # ------------------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description of the fitted model (floats, ints, strings; no pickle).

        Returns
        -------
        dict
            ``model``, ``options``, ``params``, ``standard_errors``, ``log_likelihood``, ``n``,
            ``converged``. Floats are stored unrounded so :meth:`from_dict` reproduces predictions
            exactly (``json`` writes a ``nan`` standard error as ``NaN``).
        """
        alpha, beta = self._params()
        return {
            "model": "sbg",
            "options": {"method": str(self.method), "maxiter": int(self.maxiter)},
            "params": {"alpha": float(alpha), "beta": float(beta)},
            "standard_errors": {k: float(v) for k, v in self.standard_errors_.items()},
            "log_likelihood": float(self.log_likelihood_),
            "n": int(self.n_),
            "converged": bool(self.converged_),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ShiftedBetaGeometric:
        """Rebuild a fitted model from :meth:`to_dict` output.

        Parameters
        ----------
        d : mapping
            As returned by :meth:`to_dict` (e.g. after a JSON round trip).

        Returns
        -------
        ShiftedBetaGeometric
            A fitted model (no data needed).
        """
        if d.get("model") != "sbg":
            raise ClvError(f"not an sBG model description: model is {d.get('model')!r}, expected 'sbg'")
        missing = [k for k in ("params", "standard_errors", "log_likelihood", "n") if k not in d]
        if missing:
            raise ClvError(f"sBG model description is missing {', '.join(missing)}; save it with to_dict()")
        try:
            alpha, beta = float(d["params"]["alpha"]), float(d["params"]["beta"])
        except (KeyError, TypeError, ValueError):
            raise ClvError(f"sBG params must hold numbers alpha and beta, got {d['params']!r}") from None
        if not (alpha > 0 and beta > 0 and math.isfinite(alpha) and math.isfinite(beta)):
            raise ClvError(f"sBG params must be positive, got alpha={alpha!r}, beta={beta!r}")
        options = d.get("options") or {}
        model = cls(method=str(options.get("method", "L-BFGS-B")), maxiter=int(options.get("maxiter", 1000)))
        model.params_ = {"alpha": alpha, "beta": beta}
        model.standard_errors_ = {k: float(v) for k, v in d["standard_errors"].items()}
        model.log_likelihood_ = float(d["log_likelihood"])
        model.n_ = int(d["n"])
        model.converged_ = bool(d.get("converged", True))
        return model


def _standard_errors(data: _Counts, alpha: float, beta: float) -> dict[str, float]:
    """Standard errors from the inverse Hessian of the negative log-likelihood, as every family's.

    The Hessian is :func:`.mle.central_hessian` (central differences of the analytic gradient) in
    the log-parameters the optimiser works in; at the optimum, where the gradient vanishes, it is
    ``D H D`` with ``D = diag(alpha, beta)``, so the delta method ``se(x) = x se(ln x)`` gives the
    standard errors on the reported scale.
    """
    def gradient(u: NDArray[np.float64]) -> NDArray[np.float64]:
        ab = np.exp(u)
        return -data.gradient(*ab) * ab  # d/du of the negative log-likelihood: x * d/dx

    hess = mle.central_hessian(gradient, np.log([alpha, beta]))
    if not np.all(np.linalg.eigvalsh(hess) > 0):
        return {"alpha": math.nan, "beta": math.nan}
    se = np.array([alpha, beta]) * np.sqrt(np.diag(np.linalg.inv(hess)))
    return {"alpha": float(se[0]), "beta": float(se[1])}


def projection_table(survivors: Sequence[int], fitted_periods: int) -> pd.DataFrame:
    """Fit on the first periods of a cohort and project the rest, as in [FH07]'s validation.

    Parameters
    ----------
    survivors : sequence of int
        Customers active at the start of periods ``0..n`` (see
        :meth:`ShiftedBetaGeometric.fit_survivors`).
    fitted_periods : int
        Fit on periods ``0..fitted_periods`` (``fitted_periods + 1`` values); later periods are a
        holdout. [FH07] fit years 0-7, i.e. ``fitted_periods=7``.

    Returns
    -------
    DataFrame
        One row per period ``0..n``: ``period`` (int), ``actual`` (int), ``expected``
        (``survivors[0] * S(period)``) and ``error``, the signed relative error
        ``(expected - actual) / actual`` (NaN where ``actual`` is 0). Rows with
        ``period > fitted_periods`` are out of sample.
    """
    counts = _validate_survivors(survivors)
    # At least 2 periods: the first renewal alone does not identify alpha and beta.
    if not (isinstance(fitted_periods, (int, np.integer)) and 2 <= fitted_periods <= counts.size - 1):
        raise ClvError(
            f"fitted_periods must be a whole number from 2 to {counts.size - 1} (the last period given), "
            f"got {fitted_periods!r}"
        )
    model = ShiftedBetaGeometric().fit_survivors(counts[: fitted_periods + 1])
    expected = model.expected_survivors(counts[0], counts.size - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.where(counts > 0, (expected - counts) / np.where(counts > 0, counts, 1), np.nan)
    return pd.DataFrame({"period": np.arange(counts.size), "actual": counts, "expected": expected, "error": error})


def durations_from_subscriptions(
    df: pd.DataFrame, *, period: str = "month", as_of: Any = None
) -> pd.DataFrame:
    """One row per customer: renewals made and whether the subscription has ended.

    Dates are reduced to calendar days (time of day and time zone are dropped). A customer's
    subscription runs from ``start`` to ``end``, or to ``as_of`` while it is active; an ``end``
    after ``as_of`` is in the future, so that customer is still active. ``periods_survived`` is the
    number of renewals made: the period anniversaries of ``start`` reached by ``as_of`` for an
    active customer, and those strictly before ``end`` for a lapsed one (a subscription ending on
    its first anniversary was never renewed; one ending a day later was renewed once). Counted as
    complete periods from ``start`` to ``as_of``, or to the day before ``end``:

    * ``"day"``: whole days, ``(end - start).days``;
    * ``"week"``: ``days // 7``;
    * ``"month"``: monthly anniversaries of ``start`` reached: the difference of
      ``year * 12 + month`` between the end of the span and ``start``, minus 1 if the end's
      day-of-month is before the anniversary day (``start``'s day, or the month's last day when
      the month is shorter: Jan 31 -> Feb 28 is one month, Jan 15 -> Mar 10 is one);
    * ``"year"``: complete months // 12 (Feb 29 -> Feb 28 of the next year is one year).

    Parameters
    ----------
    df : DataFrame
        Columns ``customer_id``, ``start`` and ``end`` (NaT or empty while active); one row per
        customer: the sBG has no re-subscriptions.
    period : {"day", "week", "month", "year"}
        Contract period.
    as_of : date-like, optional
        Observation date; defaults to the latest ``start`` or ``end`` in the table (reproducible,
        unlike today's date).

    Returns
    -------
    DataFrame
        ``customer_id``, ``periods_survived`` (int64), ``churned`` (bool; False = still active), in
        the input's row order, ready for :meth:`ShiftedBetaGeometric.fit_durations`.
    """
    if period not in PERIODS:
        raise ClvError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    missing = [c for c in ("customer_id", "start", "end") if c not in df.columns]
    if missing:
        raise ClvError(
            f"subscriptions table is missing column(s) {', '.join(missing)} "
            f"(columns: {', '.join(map(str, df.columns))})"
        )
    if len(df) == 0:
        raise ClvError("subscriptions table has no rows")
    ids = df["customer_id"].reset_index(drop=True)

    def fail(mask: pd.Series, one: str, many: str) -> None:
        if mask.any():
            count = int(mask.sum())
            what = f"subscription {one}" if count == 1 else f"subscriptions {many}"
            raise ClvError(f"{count} {what} (e.g. customer_id {ids[mask].iloc[0]!r})")

    dup = ids.duplicated(keep=False)
    if dup.any():
        n_dup = ids[dup].nunique()
        raise ClvError(
            f"{n_dup} customer_id{'s' if n_dup > 1 else ''} appear{'' if n_dup > 1 else 's'} on more than one row "
            f"(e.g. {ids[dup].iloc[0]!r}); keep one subscription per customer"
        )
    start, start_bad = _to_days(df["start"])
    end, end_bad = _to_days(df["end"])
    fail(start_bad, "has a start that is not a date", "have a start that is not a date")
    fail(end_bad, "has an end that is not a date", "have an end that is not a date")
    fail(start.isna(), "has no start date", "have no start date")
    if as_of is None:
        cutoff = max(start.max(), end.max()) if end.notna().any() else start.max()
    else:
        try:
            cutoff = pd.Timestamp(as_of)
        except (TypeError, ValueError):
            raise ClvError(f"as_of must be a date, got {as_of!r}") from None
        if pd.isna(cutoff):
            raise ClvError(f"as_of must be a date, got {as_of!r}")
        cutoff = (cutoff.tz_localize(None) if cutoff.tz is not None else cutoff).normalize()
    fail(start > cutoff, f"starts after as_of {cutoff.date()}", f"start after as_of {cutoff.date()}")
    fail(end < start, "ends before it starts", "end before they start")

    churned = end.notna() & (end <= cutoff)
    # Lapsed: count anniversaries strictly before the end (an end on the anniversary is no renewal).
    stop = (end - pd.Timedelta(days=1)).clip(lower=start).where(churned, cutoff)
    days = (stop - start).dt.days
    if period == "day":
        periods = days
    elif period == "week":
        periods = days // 7
    else:
        months = (stop.dt.year - start.dt.year) * 12 + (stop.dt.month - start.dt.month)
        anniversary = np.minimum(start.dt.day, stop.dt.days_in_month)
        months = months - (stop.dt.day < anniversary).astype(int)
        periods = months if period == "month" else months // 12
    return pd.DataFrame(
        {
            "customer_id": ids,
            "periods_survived": periods.astype(np.int64).to_numpy(),
            "churned": churned.to_numpy(dtype=bool),
        }
    )


def _to_days(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse to day-resolution, time-zone-naive timestamps; also flag values present but unparseable
    (they must not silently become NaT, which for ``end`` would mean "still active")."""
    raw = column.reset_index(drop=True)
    present = raw.notna() & (raw.astype(str).str.strip() != "")
    parsed = pd.to_datetime(raw.where(present), errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.dt.normalize(), present & parsed.isna()
