"""Per-channel and per-segment tables: LTV:CAC, max allowable CAC, payback, verdicts, shares.

:func:`channel_table` answers *which channels bring customers worth more than they cost* and *how
long until one pays back its CAC*; :func:`segment_table` answers *where retention money should
go*. The rules (verdicts, retention shares) are in the docstring of :mod:`clvmodel.budget`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvmodel.budget.cac_config import UNKNOWN, CacConfig
from clvmodel.budget.channels import (
    _channel_names,
    _check_channels_configured,
    _check_scores,
    _id_strings,
    _require_columns,
)
from clvmodel.budget.new_customers import REMAINING_BASIS, NewCustomerValues
from clvmodel.errors import ClvError

SEGMENTS: tuple[str, ...] = ("VIP", "high", "medium", "low", "at_risk", "lost")
"""Segments written by ``clvmodel score``, in report order."""

# Relative tolerance for "at a bound" / "budget spent" / "covers CAC" comparisons: far above
# float noise, far below anything a reader of the report would notice.
_RTOL = 1e-7


# --------------------------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------------------------


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


def _payback(cumulative: np.ndarray, cac: float, first: int = 1) -> float:
    """First period whose cumulative margin covers ``cac``, ``cumulative[0]`` being period ``first``
    (1 for existing customers' periods 1..H, 0 for a new customer's first order); NaN if none does."""
    covered = np.flatnonzero(cumulative >= cac * (1.0 - _RTOL))
    return float(covered[0] + first) if covered.size else float("nan")


def _meets(ratio: float | pd.Series, threshold: float) -> Any:
    """``ratio >= threshold`` forgiving float noise: 0.3 * 30 / 3 is 2.9999999999999996."""
    return ratio >= threshold * (1.0 - _RTOL)


#: Verdict of a configured channel that a channel-aware model has never seen: no acquisition value.
NOT_IN_MODEL = "not in model"


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
    new_values: NewCustomerValues | None = None,
) -> pd.DataFrame:
    """LTV:CAC, maximum allowable CAC, payback and verdict per channel.

    **With** ``new_values`` (a model trained with a channel, :mod:`clvmodel.budget.new_customers`)
    the table rests on the value of a *new* customer of channel ``c``, ``A_c`` =
    ``acquisition_value`` (margin basis: first order plus the discounted repeat purchases over the
    model's horizon)::

        ltv_cac_c           = A_c / cac_c                  (ltv_cac_lower/upper: the interval of A_c / cac_c)
        max_allowable_cac_c = A_c / target_ratio
        payback_periods_c   = min { p >= 0 : sum_{q=0..p} a_cq >= cac_c }

    with ``a_c0`` the first order's margin and ``a_cq`` the margin of period ``q``'s expected
    repeat purchases, discounted; payback 0 means the first order alone covers the CAC. A channel
    of the config that the model has never seen has no acquisition value: NaN, verdict
    ``not in model`` (and no budget beyond its ``min_spend``, see :func:`allocate`).

    **Without** ``new_values`` it rests on the mean *remaining* CLV of the channel's existing
    customers ``i in c`` (the scores' ``predicted_clv``; not the value of a new customer)::

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

    Either way ``customers``, ``mean_clv``, ``median_clv`` and ``total_clv`` describe the channel's
    existing customers in the scores (remaining CLV, in the scores' units), and ``value_basis``
    says in words what ``ltv_cac``, ``max_allowable_cac``, ``payback_periods`` and the allocation
    rest on. With ``new_values`` the table adds ``mean_clv_margin = margin * mean_clv``, the
    remaining CLV on the same margin basis as ``acquisition_value``, to compare the two.

    Rows: every configured channel (config order; without ``new_values`` ``customers == 0`` gets
    verdict ``no data``), then ``unknown`` if any customer has no channel (reported only: ``cac``,
    ratios and payback are NaN, verdict ``n/a``). Verdicts: see the docstring of
    :mod:`clvmodel.budget`.

    Raises
    ------
    ClvError
        No ``channel`` or ``predicted_clv`` column, a channel without a CAC entry, no horizon,
        malformed ``period_values``, or ``new_values`` that know none of the configured channels.
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
    if new_values is not None:
        known = set(new_values.channels)
        if not known & set(config.channels):
            raise ClvError(
                f"none of the CAC config's channels ({', '.join(config.channels)}) is a channel of the model "
                f"({', '.join(new_values.channels)}); name the channels in the CAC config as in the training data"
            )
    elif period_values is not None:
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

    basis = new_values.basis if new_values is not None else REMAINING_BASIS
    names = list(config.channels) + ([UNKNOWN] if (channels == UNKNOWN).any() else [])
    rows = []
    for name in names:
        mask = (channels == name).to_numpy()
        n = int(mask.sum())
        mean_clv = float(clv[mask].mean()) if n else float("nan")
        median_clv = float(np.median(clv[mask])) if n else float("nan")
        cac = config.channels[name].observed_cac if name in config.channels else float("nan")
        row: dict[str, Any] = {
            "channel": name, "customers": n, "mean_clv": mean_clv, "median_clv": median_clv,
            "total_clv": float(clv[mask].sum()),
        }
        if new_values is not None:
            value = new_values.value(name)
            acquired = value["acquisition_value"]
            # The existing customers' remaining CLV on the same margin basis, to compare with.
            row["mean_clv_margin"] = config.margin * mean_clv
            row.update(value)
            row["cac"] = cac
            row["ltv_cac"] = acquired / cac
            row["ltv_cac_lower"] = value["acquisition_value_lower"] / cac
            row["ltv_cac_upper"] = value["acquisition_value_upper"] / cac
            row["max_allowable_cac"] = acquired / config.target_ratio if name != UNKNOWN else float("nan")
            seen = name in new_values.periods and np.isfinite(acquired)
            row["payback_periods"] = (
                _payback(np.cumsum(new_values.periods[name]), cac, first=0) if seen and np.isfinite(cac)
                else float("nan")
            )
            if name == UNKNOWN:
                verdict = "n/a"
            elif name not in new_values.periods:
                verdict = NOT_IN_MODEL
            elif not seen:
                verdict = "no value"  # the model knows the channel but cannot value it (no first order amount)
            else:
                verdict = _verdict(row["ltv_cac"], row["payback_periods"], config.target_ratio)
        else:
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
            row.update({
                "cac": cac,
                "ltv_cac": ratio,
                "max_allowable_cac": config.margin * mean_clv / config.target_ratio
                if name != UNKNOWN else float("nan"),
                "payback_periods": payback,
            })
            verdict = "no data" if n == 0 else _verdict(ratio, payback, config.target_ratio)
        row["verdict"] = verdict
        row["value_basis"] = basis
        rows.append(row)
    table = pd.DataFrame(rows)
    table["customers"] = table["customers"].astype("int64")
    return table


# --------------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------------


def segment_table(scores: pd.DataFrame, config: CacConfig) -> pd.DataFrame:
    """Customers, CLV share and suggested retention budget share per segment.

    ::

        clv_at_risk_s      = sum_{i in s} predicted_clv_i * (1 - p_alive_i)
        retention_share_s  = w_s * clv_at_risk_s / sum_t w_t * clv_at_risk_t
        retention_budget_s = retention_share_s * config.retention_budget

    with ``w = config.retention_weights`` (default 1, ``lost`` 0); the rationale is in the
    docstring of :mod:`clvmodel.budget`. Shares are 0 when nothing is at risk. Rows follow
    ``VIP, high, medium, low, at_risk, lost``, then any other segment names sorted.

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
