"""CLV vs CAC: LTV:CAC by acquisition channel, the 3:1 rule, payback, and budget allocation.

This package is the library side of ``clvmodel budget``. It takes a scores table (one row per
customer, as written by ``clvmodel score``: ``customer_id``, ``predicted_clv``, ``p_alive``,
``segment`` and optionally ``channel``), a CAC config (YAML, see below), optionally a trained
model, and answers four questions:

1. *Which channels bring customers worth more than they cost?*  :func:`channel_table` computes,
   per channel, ``ltv_cac = value / cac`` and the largest CAC that still meets the target ratio,
   ``max_allowable_cac = value / target_ratio``.
2. *How long until an acquired customer pays back its CAC?*  ``payback_periods`` in
   :func:`channel_table`.
3. *How should the acquisition budget be split?*  :func:`allocate` maximises expected value
   acquired minus spend under each channel's response curve.
4. *Where should retention money go?*  :func:`segment_table`.

Which value
-----------
A CAC buys a *new* customer. With a model trained with a channel (``customers: {channel: ...}``;
:func:`~clvmodel.budget.new_customers.channel_aware`) the value of channel ``c`` is its
**acquisition value** ``A_c`` (:mod:`clvmodel.acquisition`): the margin of the first order plus
the discounted margin of the expected repeat purchases over the model's ``clv.horizon``, at the
model's ``clv.discount_rate``, for a customer acquired now through ``c``, with a bootstrap
interval (``acquisition_value_lower/upper``, 90%). Its margin is the config's ``margin`` times the
model's ``clv.margin``, the same two factors as for ``predicted_clv``. Then ``ltv_cac = A_c /
cac``, ``max_allowable_cac = A_c / target_ratio``, payback walks the new customer's per-period
value with the first order at period 0 (a CAC at or below the first order's margin pays back at
0), and the allocation values an acquired customer at ``A_c``. The config's ``horizon`` is not
used (a warning says so when it differs from the model's).

Without such a model the value is ``margin * mean_clv``: the mean *remaining* CLV of the
channel's existing customers (the scores' ``predicted_clv``). That is **not the value of a new
customer**: it leaves out the first order, and it mixes tenure with channel quality (a channel
that acquired its customers long ago looks worse than one that acquired them last month). The
output's ``value_basis`` column, the report's ``Value:`` line and the chart's title say which of
the two a run rests on. ``customers``, ``mean_clv``, ``median_clv`` and ``total_clv`` always
describe the existing customers, and the segment table always rests on their remaining CLV.

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
                             # period_values (not with a channel-aware model: its horizon rules;
                             # with --model, clvmodel budget --horizon "3 years" and
                             # --annual-discount-rate set the model's horizon and rate instead)
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
Channel the model never saw
    With a channel-aware model, a channel of the CAC config that the model has no customers of
    (a new channel, say) cannot be valued: it is kept in the table with NaN value and ratios,
    verdict ``not in model``, and gets only its ``min_spend`` (its ``expected_clv`` and
    ``marginal_ltv_cac`` are NaN: unknown, not 0); one warning names it. When the model knows
    *none* of the config's channels, the names are surely spelt otherwise than in the training
    data: that is an error, one line. A channel the model knows but cannot value (no first
    order amount) gets verdict ``no value``.
Verdict
    ``grow`` when ``ltv_cac >= target_ratio`` and the CAC is paid back within the horizon;
    ``hold`` when ``1 <= ltv_cac`` but the target or the payback is missed; ``cut`` when
    ``ltv_cac < 1`` (every customer loses money). ``n/a`` for ``unknown``; without a
    channel-aware model ``no data`` for a configured channel with no customers in the scores
    (with one, the value comes from the model and needs no existing customers);
    ``not in model`` / ``no value`` as above. The verdict is about the *average*
    customer at the current CAC; the allocation's ``marginal_ltv_cac`` says what the *next*
    dollar buys, which is what decides where more money should go.
Spending stop
    The allocation maximises expected value acquired (on margin) minus spend. A dollar is worth
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

Modules
-------
``cac_config``
    The CAC config file: :class:`CacConfig` and its parts, :func:`load_cac_config`,
    :func:`parse_cac_config` and their one-line validation messages.
``channels``
    Scores in: column checks, clean channel labels, :func:`attach_channels`.
``new_customers``
    :func:`~clvmodel.budget.new_customers.new_customer_values`: a channel-aware model's
    acquisition value per channel and its per-period path, as plain data for the tables.
``tables``
    :func:`channel_table` (LTV:CAC, max allowable CAC, payback, verdicts) and
    :func:`segment_table` (CLV and retention shares).
``allocation``
    :func:`allocate`: SLSQP with analytic gradients, an exact polish on the active set, and the
    optimality check.
``run``
    :func:`run_budget` and :class:`BudgetResult`.
``report``
    :func:`format_report` and :func:`ltv_cac_chart`.
``synthetic``
    :func:`synthetic_channels` for the CDNOW demo.
"""

from __future__ import annotations

from clvmodel.budget.allocation import allocate
from clvmodel.budget.cac_config import (
    DEFAULT_RETENTION_WEIGHTS,
    UNKNOWN,
    CacConfig,
    ChannelConfig,
    ResponseConfig,
    load_cac_config,
    parse_cac_config,
)
from clvmodel.budget.channels import attach_channels
from clvmodel.budget.files import BudgetFiles, budget_files
from clvmodel.budget.new_customers import REMAINING_BASIS, NewCustomerValues, channel_aware, new_customer_values
from clvmodel.budget.report import format_report, ltv_cac_chart
from clvmodel.budget.run import BudgetResult, run_budget
from clvmodel.budget.synthetic import SYNTHETIC_CHANNEL_SHARES, synthetic_channels
from clvmodel.budget.tables import SEGMENTS, channel_table, segment_table

__all__ = [
    "BudgetFiles",
    "budget_files",
    "REMAINING_BASIS",
    "NewCustomerValues",
    "channel_aware",
    "new_customer_values",
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
