"""What a *new* customer of each channel is worth, from a model trained with a channel.

``clvmodel budget --model DIR`` with a model trained with ``customers: {channel: ...}`` puts the
per-channel table on the **acquisition value** (:mod:`clvmodel.acquisition`): the margin of the
first order plus the discounted margin of the repeat purchases over the model's horizon, for a
customer acquired now through the channel. That is what a CAC buys. Without such a model the
table rests on the mean remaining CLV of the channel's existing customers (``predicted_clv`` of
the scores), which is not the value of a new customer: it leaves out the first order and mixes
tenure with channel quality. :data:`REMAINING_BASIS` is the label that says so, wherever that
number is used.

:func:`new_customer_values` evaluates the model once per channel into a
:class:`NewCustomerValues`, plain data that :func:`~clvmodel.budget.tables.channel_table` and the
allocation read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvmodel.errors import ClvError

__all__ = ["REMAINING_BASIS", "NewCustomerValues", "channel_aware", "new_customer_values"]

#: What the LTV:CAC of a budget without a channel-aware model rests on, said plainly.
REMAINING_BASIS = "remaining CLV of existing customers, not the value of a new customer"

#: Columns of :attr:`NewCustomerValues.table` (money on the budget's margin basis).
VALUE_COLUMNS = ("acquisition_value", "acquisition_value_lower", "acquisition_value_upper")


@dataclass
class NewCustomerValues:
    """The acquisition value of each channel the model knows, on the budget's margin basis.

    Attributes
    ----------
    table
        Index ``channel`` (every channel of the model), columns :data:`VALUE_COLUMNS`:
        ``acquisition_value`` and its bootstrap interval at ``level``.
    periods
        ``channel -> array of length horizon + 1``: the new customer's value in period 0 (the
        first order) and each period ``1..horizon`` after it (repeat purchases, discounted); it
        sums to ``acquisition_value``. Payback walks it.
    horizon, discount_rate, time_unit
        The model's CLV horizon, discount rate per period, and period.
    margin
        The margin applied: the CAC config's ``margin`` times the model's ``clv.margin``, the
        same two factors that turn the scores' ``predicted_clv`` into margin in the budget.
    level
        The interval's coverage.
    notes
        What the reader should know about the values (a channel on the pooled spend model, a
        first order that is the mean spend standing in), one line each.
    """

    table: pd.DataFrame
    periods: dict[str, np.ndarray] = field(default_factory=dict)
    horizon: int = 0
    discount_rate: float = 0.0
    margin: float = 1.0
    time_unit: str = "period"
    level: float = 0.9
    notes: list[str] = field(default_factory=list)

    @property
    def channels(self) -> list[str]:
        """The channels the model can value."""
        return [str(c) for c in self.table.index]

    @property
    def basis(self) -> str:
        """One line: what ``acquisition_value`` is (for the output's ``value_basis`` column)."""
        return (
            f"acquisition value of a new customer: first order + {self.horizon} {self.time_unit}s of repeat "
            f"purchases (model forecast, discount {self.discount_rate:g} per {self.time_unit})"
        )

    def value(self, channel: str) -> dict[str, float]:
        """The :data:`VALUE_COLUMNS` of one channel; NaN for a channel the model has not seen."""
        if channel not in self.table.index:
            return {c: float("nan") for c in VALUE_COLUMNS}
        row = self.table.loc[channel]
        return {c: float(row[c]) for c in VALUE_COLUMNS}


def channel_aware(trained: Any) -> bool:
    """Whether ``trained`` was trained with a channel (``customers: {channel: ...}``), so it can value a
    new customer of each channel."""
    state = getattr(trained, "acquisition", None)
    return state is not None and state.channel is not None and bool(state.channels)


def new_customer_values(
    trained: Any, margin: float, *, level: float = 0.9, draws: int = 1000, seed: int = 0,
    horizon: int | None = None, discount_rate: float | None = None,
) -> NewCustomerValues:
    """The acquisition value of every channel of ``trained`` at the model's horizon and discount rate
    (or at ``horizon`` whole periods and ``discount_rate`` per period, when given).

    ``margin`` is the CAC config's; the model's ``clv.margin`` is applied as well (see
    :attr:`NewCustomerValues.margin`). Values and intervals come from
    :func:`clvmodel.acquisition.acquisition_table`, the per-period path from
    :func:`clvmodel.acquisition.period_values`.

    Raises
    ------
    ClvError
        The model has no channel, or cannot value a new customer (no amounts, so no spend model).
    """
    from clvmodel.acquisition import acquisition_table, period_values

    if not channel_aware(trained):
        raise ClvError(
            "the model was trained without a channel, so it cannot value a new customer per channel; "
            "train with customers: {channel: ...} in the config"
        )
    horizon = int(trained.clv["horizon"] if horizon is None else horizon)
    discount_rate = float(trained.clv["discount_rate"] if discount_rate is None else discount_rate)
    applied = float(margin) * float(trained.clv.get("margin", 1.0))
    table = acquisition_table(
        trained, horizon=horizon, discount_rate=discount_rate, margin=applied, level=level, draws=draws, seed=seed
    )
    table = table.assign(channel=table["channel"].astype(str)).set_index("channel")
    values = table[list(VALUE_COLUMNS)].astype(float)
    if not np.isfinite(values["acquisition_value"].to_numpy()).any():
        raise ClvError(
            "the model has no acquisition value for any channel (trained without amounts?); retrain with an "
            "amount column, or run clvmodel budget without --model"
        )
    notes = []
    bases = table.reindex(values.index)
    if "spend_basis" in bases.columns:
        pooled = [str(c) for c in bases.index[bases["spend_basis"].astype(str) == "pooled"]]
        if pooled:
            least = int(getattr(trained.acquisition, "min_repeat_customers", 0))
            notes.append(
                f"{', '.join(pooled)}: fewer than {least} repeat customers in training, so the expected order value in "
                "the acquisition value is the pooled spend model's, not the channel's own"
            )
    if "first_order_basis" in bases.columns:
        standing = [str(c) for c in bases.index[bases["first_order_basis"].astype(str) == "mean_spend"]]
        if standing:
            notes.append(
                f"{', '.join(standing)}: the model kept no first order value, so the mean spend per order stands in for it"
            )
    periods = {
        str(name): np.asarray(period_values(trained, name, horizon, discount_rate, applied), dtype=float)
        for name in values.index
    }
    return NewCustomerValues(
        table=values, periods=periods, horizon=horizon, discount_rate=discount_rate, margin=applied,
        time_unit=str(trained.time_unit), level=float(level), notes=notes,
    )
