"""Orchestration: :func:`run_budget` runs the whole stage into a :class:`BudgetResult`.

Steps: :func:`~clvmodel.budget.channels.attach_channels` ->
:func:`~clvmodel.budget.tables.channel_table` -> :func:`~clvmodel.budget.allocation.allocate`
-> :func:`~clvmodel.budget.tables.segment_table`, plus the warnings the reader must see. Nothing
here reads or writes files, loads a model or logs to MLflow: ``clvmodel budget``
(:mod:`clvmodel.budget.files`, :mod:`clvmodel.cli`) does; a model's new-customer values come in
as :class:`~clvmodel.budget.new_customers.NewCustomerValues`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clvmodel.budget.allocation import _allocate
from clvmodel.budget.cac_config import UNKNOWN, CacConfig
from clvmodel.budget.channels import _check_scores, attach_channels
from clvmodel.budget.new_customers import REMAINING_BASIS, NewCustomerValues
from clvmodel.budget.tables import NOT_IN_MODEL, _meets, channel_table, segment_table


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
    new_values
        The model's new-customer values the channel table rests on; ``None``: it rests on the
        remaining CLV of existing customers (:data:`value_basis` says which, in words).
    """

    channels: pd.DataFrame
    segments: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    target_ratio: float = 3.0
    margin: float = 1.0
    budget: float = 0.0
    retention_budget: float = 0.0
    new_values: NewCustomerValues | None = None

    @property
    def value_basis(self) -> str:
        """What LTV:CAC, max allowable CAC, payback and the allocation rest on, in words."""
        return self.new_values.basis if self.new_values is not None else REMAINING_BASIS

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
            # Every dollar allocated counts, also one spent on a channel without a value (min_spend).
            "expected_net_value": float(ch["expected_clv"].fillna(0.0).sum()) - self.allocated,
        }


def _channel_warnings(table: pd.DataFrame, config: CacConfig) -> list[str]:
    notes: list[str] = []
    unseen = table.loc[table["verdict"] == NOT_IN_MODEL, "channel"].tolist()
    if unseen:
        notes.append(
            f"{', '.join(unseen)}: not a channel of the model, so no acquisition value, verdict "
            f"{NOT_IN_MODEL!r} and only its min_spend; retrain with customers of that channel to value it"
        )
    known = table[(table["channel"] != UNKNOWN) & np.isfinite(table["ltv_cac"].astype(float))]
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
    new_values: NewCustomerValues | None = None,
) -> BudgetResult:
    """Channels, allocation, segments and warnings for one scores table.

    Steps: :func:`attach_channels` -> :func:`channel_table` -> :func:`allocate` (merged on
    ``channel``) -> :func:`segment_table`. With ``new_values`` (a model trained with a channel)
    the channel table and the allocation rest on the acquisition value of a new customer, and
    ``period_values`` / ``horizon`` are not used; without, on the remaining CLV of existing
    customers. The segment table rests on the remaining CLV either way. Raises
    :class:`ClvError` as those do.
    """
    _check_scores(scores)
    with_channels = attach_channels(scores, customers)
    table = channel_table(with_channels, config, period_values=period_values, horizon=horizon,
                          new_values=new_values)
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
        retention_budget=config.retention_budget, new_values=new_values,
    )
