"""The back-of-the-envelope LTV: the historical formula from aggregate inputs, and the 3:1 rule.

``clvmodel formula`` needs no data and no model. It computes what the marketing texts teach::

    LTV = margin × value per period × A

* **value per period** ``v``: ``order value × purchases per period`` (a retailer), or the
  subscription ``fee`` per period;
* **A**, the (discounted) number of periods the customer pays for, with the per-period discount
  rate ``d``. Each period's value is counted at the end of its period, so the value of period
  ``k`` is discounted by ``(1 + d)^k`` and **the first period is discounted once**: the
  convention of :func:`clvmodel.clv.discount_factors` (``(1 + d)^-k`` for ``k = 1..H``), which
  every forecast of the project uses. ``d = 0`` means no discounting.

  - with a known lifetime of ``L`` periods: the annuity of the historical model,
    ``A = Σ_{k=1}^{⌊L⌋} (1+d)^-k + (L − ⌊L⌋)(1+d)^-(⌊L⌋+1)``
    (:func:`clvmodel.models.historical.annuity`; ``A = L`` when ``d = 0``);
  - with a constant retention rate ``r`` per period instead: the customer pays in the first
    period and is still there in period ``k`` with probability ``r^(k−1)``, so the expected
    lifetime is ``Σ_k r^(k−1) = 1 / (1 − r)`` periods and

    .. math::

        A = \\sum_{k=1}^{\\infty} \\frac{r^{k-1}}{(1+d)^k} = \\frac{1}{1 + d - r},

    the constant-retention model of Berger & Nasr (1998) and Gupta & Lehmann (2003).
    Gupta & Lehmann's "margin multiple" :math:`m r / (1 + i - r)` counts a margin only after a
    first renewal (a customer already acquired); the start-of-period variant
    :math:`m (1 + i) / (1 + i - r)` counts the first period's margin undiscounted. The form here
    sits between them, ``m / (1 + d − r)``: the first period is paid for certain and, as everywhere
    in clvmodel, discounted once. Without discounting it is ``v / (1 − r)``, value per period times
    the expected lifetime of ``1 / (1 − r)`` periods.

With a customer acquisition cost ``C`` and a target ratio ``t`` (3 by default, the 3:1 rule):
``ltv_cac = LTV / C``, the maximum allowable CAC ``LTV / t`` (a CAC of 100 needs an LTV of at
least 300), and the verdict of ``clvmodel budget`` (:mod:`clvmodel.budget`): ``grow`` when
``ltv_cac ≥ t``, ``hold`` when ``1 ≤ ltv_cac < t``, ``cut`` when ``ltv_cac < 1``. (The budget also
asks for the CAC to be paid back within the horizon; here the value accrues over the lifetime the
LTV counts, so an LTV of at least the CAC pays it back within that (expected) lifetime.)

References
----------
.. [1] Berger, P. D. and Nasr, N. I. (1998). Customer lifetime value: marketing models and
   applications. *Journal of Interactive Marketing* 12(1), 17–30.
.. [2] Gupta, S. and Lehmann, D. R. (2003). Customers as assets. *Journal of Interactive
   Marketing* 17(1), 9–24.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from clvmodel.config import MAX_HORIZON, excerpt
from clvmodel.errors import ClvError
from clvmodel.models.historical import annuity

__all__ = ["FormulaResult", "lifetime_value", "render"]

#: The longest lifetime given in periods: 100 years of days, the project's longest horizon
#: (:data:`clvmodel.config.MAX_HORIZON`); the annuity is summed period by period.
MAX_PERIODS = MAX_HORIZON["day"]
#: ``ratio >= threshold`` forgiving float noise, as :mod:`clvmodel.budget` does.
_RTOL = 1e-7


@dataclass(frozen=True)
class FormulaResult:
    """The LTV, how it was computed and, with a CAC, the 3:1 rule's answer.

    ``value_per_period`` is ``order_value × purchases_per_period`` or the fee;
    ``discounted_periods`` is ``A``; ``expected_lifetime`` is the undiscounted number of periods
    (``L``, or ``1 / (1 − r)``). The CAC fields are None without a CAC.
    """

    ltv: float
    value_per_period: float
    discounted_periods: float
    expected_lifetime: float
    margin: float
    discount_rate: float
    order_value: float | None = None
    purchases_per_period: float | None = None
    fee: float | None = None
    periods: float | None = None
    retention_rate: float | None = None
    cac: float | None = None
    target_ratio: float | None = None
    ltv_cac: float | None = None
    max_allowable_cac: float | None = None
    verdict: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """``{"ltv": …}``, and with a CAC ``ltv_cac``, ``max_allowable_cac`` and ``verdict`` (``--json``)."""
        answer: dict[str, Any] = {"ltv": self.ltv}
        if self.cac is not None:
            answer.update(ltv_cac=self.ltv_cac, max_allowable_cac=self.max_allowable_cac, verdict=self.verdict)
        return answer


def _number(value: Any, option: str, *, example: str) -> float:
    """``value`` as a finite float, or one line naming the option."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise ClvError(f"formula: {option} must be a finite number, got {excerpt(value)}; use e.g. {option} {example}")
    return number


def _positive(value: Any, option: str, *, example: str) -> float:
    number = _number(value, option, example=example)
    if number <= 0:
        raise ClvError(f"formula: {option} must be > 0, got {number:g}; use e.g. {option} {example}")
    return number


def _rate(value: Any, option: str, *, example: str, what: str) -> float:
    """A per-period rate in [0, 1); 1 or more is most likely a percentage typed as a whole number."""
    number = _number(value, option, example=example)
    if not 0 <= number < 1:
        raise ClvError(
            f"formula: {option} must be in [0, 1) per period, got {number:g}; {what}, e.g. {option} {example}"
            + (" (a percentage is a fraction here: 10% is 0.1)" if number >= 1 else "")
        )
    return number


def _verdict(ratio: float, target: float) -> str:
    """The verdict of :mod:`clvmodel.budget` (payback holds whenever ``ratio >= 1``, see the module docstring)."""
    if ratio < 1.0 * (1.0 - _RTOL):
        return "cut"
    return "grow" if ratio >= target * (1.0 - _RTOL) else "hold"


def lifetime_value(
    *,
    order_value: float | None = None,
    purchases_per_period: float | None = None,
    fee: float | None = None,
    periods: float | None = None,
    retention_rate: float | None = None,
    margin: float = 1.0,
    discount_rate: float = 0.0,
    cac: float | None = None,
    target_ratio: float | None = None,
) -> FormulaResult:
    """LTV from aggregate inputs: ``margin × value per period × A`` (see the module docstring).

    Parameters
    ----------
    order_value, purchases_per_period
        Average order value and orders per period (both, > 0); or
    fee
        a subscription fee per period (> 0), not with the two above.
    periods
        Lifetime ``L`` in periods (> 0, fractional allowed, at most :data:`MAX_PERIODS`); or
    retention_rate
        a constant per-period retention rate ``r`` in [0, 1): expected lifetime ``1 / (1 − r)``.
        Exactly one of ``periods`` and ``retention_rate``.
    margin
        Share of the value kept, in (0, 1]; 1 when the values are already margin.
    discount_rate
        ``d`` per period, in [0, 1): period ``k``'s value counts ``(1 + d)^-k``, the first period
        discounted once (:func:`clvmodel.clv.discount_factors`).
    cac
        Customer acquisition cost (> 0): adds ``ltv_cac``, ``max_allowable_cac`` and ``verdict``.
    target_ratio
        LTV:CAC a customer must reach (≥ 1; 3 when a CAC is given, the 3:1 rule). Only with ``cac``.

    Returns
    -------
    FormulaResult

    Raises
    ------
    ClvError
        One line naming the option: a missing or extra piece, a negative, zero or non-finite
        number, a rate outside [0, 1), a margin outside (0, 1].

    Notes
    -----
    With a lifetime of ``L`` periods, ``A = Σ_{k=1}^{⌊L⌋} (1+d)^-k + (L − ⌊L⌋)(1+d)^-(⌊L⌋+1)``
    (:func:`clvmodel.models.historical.annuity`), ``A = L`` when ``d = 0``. With a retention rate,
    ``A = Σ_{k≥1} r^(k−1) (1+d)^-k = 1 / (1 + d − r)``, the constant-retention model of Berger &
    Nasr (1998) [1]_ and Gupta & Lehmann (2003) [2]_ (their ``m r / (1 + i − r)`` family) with the
    first period paid for certain and discounted once.

    Examples
    --------
    >>> lifetime_value(order_value=50, purchases_per_period=2, periods=12).ltv
    1200.0
    >>> lifetime_value(fee=30, periods=24).ltv
    720.0
    >>> lifetime_value(fee=100, periods=3, cac=100).as_dict()
    {'ltv': 300.0, 'ltv_cac': 3.0, 'max_allowable_cac': 100.0, 'verdict': 'grow'}

    References
    ----------
    .. [1] Berger, P. D. and Nasr, N. I. (1998). Customer lifetime value: marketing models and
       applications. *Journal of Interactive Marketing* 12(1), 17–30.
    .. [2] Gupta, S. and Lehmann, D. R. (2003). Customers as assets. *Journal of Interactive
       Marketing* 17(1), 9–24.
    """
    if fee is not None and (order_value is not None or purchases_per_period is not None):
        raise ClvError("formula: --fee is a subscription's value per period; pass it alone, or --order-value and "
                       "--purchases-per-period without --fee")
    if fee is None and (order_value is None or purchases_per_period is None):
        missing = "--purchases-per-period" if order_value is not None else "--order-value"
        if order_value is None and purchases_per_period is None:
            raise ClvError("formula: pass the value per period: --order-value and --purchases-per-period (a "
                           "retailer), or --fee (a subscription)")
        raise ClvError(f"formula: {missing} is missing; a retailer's value per period is --order-value × "
                       "--purchases-per-period")
    if (periods is None) == (retention_rate is None):
        raise ClvError("formula: pass exactly one of --periods (the lifetime, e.g. 12) or --retention-rate (per "
                       "period, e.g. 0.8: an expected lifetime of 1 / (1 - 0.8) = 5 periods)")
    if target_ratio is not None and cac is None:
        raise ClvError("formula: --target-ratio applies to LTV:CAC; pass --cac too, e.g. --cac 100 --target-ratio 3")

    if fee is not None:
        fee = _positive(fee, "--fee", example="30")
        value = fee
    else:
        order_value = _positive(order_value, "--order-value", example="50")
        purchases_per_period = _positive(purchases_per_period, "--purchases-per-period", example="2")
        value = order_value * purchases_per_period
    margin = _number(margin, "--margin", example="0.3")
    if not 0 < margin <= 1:
        raise ClvError(f"formula: --margin must be in (0, 1], got {margin:g}; use the share of revenue kept, e.g. "
                       "--margin 0.3 (1 when the values are already margin)")
    discount_rate = _rate(discount_rate, "--discount-rate", example="0.01", what="use 0 for none")
    if periods is not None:
        periods = _positive(periods, "--periods", example="12")
        if periods > MAX_PERIODS:
            raise ClvError(f"formula: --periods must be at most {MAX_PERIODS:,} (100 years of days), got "
                           f"{periods:g}; use --retention-rate for an open-ended lifetime")
        lifetime = periods
        discounted = annuity(periods, discount_rate)
    else:
        retention_rate = _rate(retention_rate, "--retention-rate", example="0.8",
                               what="the share of customers kept from one period to the next")
        lifetime = 1.0 / (1.0 - retention_rate)
        discounted = 1.0 / (1.0 + discount_rate - retention_rate)
    ltv = margin * value * discounted
    if not math.isfinite(ltv):
        raise ClvError("formula: the LTV is too large to compute (value per period × lifetime overflows); check the "
                       "inputs' units")

    ratio = allowable = verdict = None
    if cac is not None:
        cac = _positive(cac, "--cac", example="100")
        target_ratio = _number(3.0 if target_ratio is None else target_ratio, "--target-ratio", example="3")
        if target_ratio < 1:
            raise ClvError(f"formula: --target-ratio must be >= 1 (LTV at least the CAC), got {target_ratio:g}; use "
                           "e.g. --target-ratio 3 (the 3:1 rule)")
        ratio = ltv / cac
        if not math.isfinite(ratio):
            raise ClvError(f"formula: LTV:CAC overflows (LTV {ltv:g} over a CAC of {cac:g}); check --cac")
        allowable = ltv / target_ratio
        verdict = _verdict(ratio, target_ratio)
    return FormulaResult(
        ltv=ltv, value_per_period=value, discounted_periods=discounted, expected_lifetime=lifetime, margin=margin,
        discount_rate=discount_rate, order_value=order_value, purchases_per_period=purchases_per_period, fee=fee,
        periods=periods, retention_rate=retention_rate, cac=cac, target_ratio=target_ratio, ltv_cac=ratio,
        max_allowable_cac=allowable, verdict=verdict,
    )


def _n(x: float | None) -> str:
    """An input as typed: ``50``, ``0.01``, ``1,200``."""
    return format(float(x), ",.10g") if x is not None else "?"


def render(result: FormulaResult) -> str:
    """What ``clvmodel formula`` prints: the formula with its inputs, the LTV and the 3:1 rule."""
    r, d = result, result.discount_rate
    if r.fee is not None:
        name, numbers = "fee", _n(r.fee)
    else:
        name, numbers = "order value × purchases per period", f"{_n(r.order_value)} × {_n(r.purchases_per_period)}"
    at_end = "period k's value counted at its end, the first period discounted once"
    if r.periods is not None and d == 0:
        lines = [f"formula: LTV = {name} × periods × margin",
                 f"           = {numbers} × {_n(r.periods)} × {_n(r.margin)}"]
    elif r.periods is not None:
        lines = [f"formula: LTV = {name} × A × margin, A = Σ_k=1..L (1 + d)^-k ({at_end})",
                 f"           = {numbers} × {r.discounted_periods:,.6g} × {_n(r.margin)}  "
                 f"(L = {_n(r.periods)} periods, d = {_n(d)} per period)"]
    elif d == 0:
        lines = [f"formula: LTV = {name} × 1 / (1 - r) × margin  (expected lifetime 1 / (1 - r) periods at a "
                 "retention rate r per period)",
                 f"           = {numbers} × 1 / (1 - {_n(r.retention_rate)}) × {_n(r.margin)}  "
                 f"(expected lifetime {r.expected_lifetime:,.6g} periods)"]
    else:
        lines = [f"formula: LTV = {name} × A × margin, A = Σ_k≥1 r^(k-1) (1 + d)^-k = 1 / (1 + d - r)",
                 f"         (retention rate r per period, Berger & Nasr 1998, Gupta & Lehmann 2003; {at_end})",
                 f"           = {numbers} × 1 / (1 + {_n(d)} - {_n(r.retention_rate)}) × {_n(r.margin)}  "
                 f"(A = {r.discounted_periods:,.6g}; undiscounted expected lifetime {r.expected_lifetime:,.6g} "
                 "periods)"]
    lines.append(f"LTV {r.ltv:,.2f}")
    if r.cac is not None and r.ltv_cac is not None and r.max_allowable_cac is not None:
        lines.append(f"LTV:CAC {r.ltv_cac:,.2f}:1 at a CAC of {_n(r.cac)} (target {_n(r.target_ratio)}:1): {r.verdict}")
        lines.append(f"max allowable CAC {r.max_allowable_cac:,.2f} (LTV / {_n(r.target_ratio)})")
    return "\n".join(lines)
