"""Segments: a label per scored customer from P(alive) and its predicted CLV against boundaries fixed at training.

As the ``segment`` column of :mod:`clvmodel.predict` is described: ``lost`` when P(alive) <
``segments.lost_below``, else ``at_risk`` when below ``segments.at_risk_below`` (risk first: a
valuable customer slipping away needs action more than a tier label); the others are tiered by
predicted CLV against **boundaries fixed at training** (:func:`fit_boundaries`): the lowest CLV
of the top ``vip_share`` (1 %), ``high_share`` (20 %) and ``medium_share`` (50 %) of the
training customers. A customer at or above a boundary (and above 0) is in that tier (``VIP``,
``high``, ``medium``), below the last one ``low``. The boundaries are stored in the model document
(``segment_boundaries``) and applied alike to any batch (:func:`fixed_codes`), so a customer's
segment does not depend on who else is scored with it.

Without a value (a model trained without amounts, or scored without them and without a spend
model) the tiers are on expected purchases, against boundaries fixed the same way on the training
customers' expected purchases. A customer with neither is ``low`` (then the P(alive) rules).

Documents written before the boundaries existed have none: their customers are still tiered by
rank within the scored batch (:func:`assign_segments`, the rule they were trained with; see
:func:`clvmodel.batch.segment_sql` and the Spark window), until the model is retrained.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SEGMENTS", "TIERS", "assign_segments", "fit_boundaries", "fixed_codes", "boundary", "boundaries_at"]

SEGMENTS = ("VIP", "high", "medium", "low", "at_risk", "lost")
#: The value tiers with a boundary, best first, as keys of a boundaries section and ``<key>_share`` settings.
TIERS = ("vip", "high", "medium")
#: What tiers are compared on, in order of preference: the value, else expected purchases.
BASES = ("predicted_clv", "expected_purchases")


def boundary(values: np.ndarray, share: float, weights: np.ndarray | None = None) -> float | None:
    """The lowest value among the top ``share`` of customers: the ``k``-th largest of ``values``.

    ``k`` is the number of ranks whose cumulative share (``k / n``, or with ``weights`` the
    customers the first ``k`` rows stand for over all of them) is at most ``share``, as the rank
    rule counts a tier (:func:`_top_count`), and at least 1: in a base of fewer than 100 customers
    the top 1 % is the best customer. Missing values are left out. ``None`` when none is known.
    """
    return boundaries_at(values, [share], weights)[0]


def boundaries_at(values: np.ndarray, shares: list[float], weights: np.ndarray | None = None) -> list[float | None]:
    """:func:`boundary` at each of ``shares``, from one partial sort (one stable sort with ``weights``).

    Without weights the ``k``-th largest value is a selection (:func:`numpy.partition`, linear),
    the same number whatever the order of ties. With weights the cumulative share is summed in
    the order of one stable sort, highest first, as for a single share.
    """
    values = np.asarray(values, dtype=float)
    known = ~np.isnan(values)
    if not known.any():
        return [None] * len(shares)
    kept = values[known]
    n = len(kept)
    if weights is None:
        counts = [max(_top_count(float(share), n), 1) for share in shares]
        selected = np.partition(kept, sorted({n - count for count in counts}))
        found = [float(selected[n - count]) for count in counts]
        # 0.0 and -0.0 tie: which one a stable sort puts at rank k is the only thing a selection
        # cannot tell; the (rare) boundary at zero with a -0.0 about takes the sort.
        if not any(value == 0.0 for value in found) or not np.signbit(kept[kept == 0.0]).any():
            return found
    order = np.argsort(-kept, kind="stable")
    ranked = kept[order]
    if weights is None:
        return [float(ranked[count - 1]) for count in counts]
    cumulative = np.cumsum(np.asarray(weights, dtype=float)[known][order])
    return [float(ranked[max(int(np.count_nonzero(cumulative / cumulative[-1] <= share)), 1) - 1]) for share in shares]


def fit_boundaries(
    predicted_clv: np.ndarray, expected_purchases: np.ndarray, settings: dict[str, Any], weights: np.ndarray | None = None
) -> dict[str, dict[str, float] | None]:
    """The boundaries a model stores (document section ``segment_boundaries``), from its training customers' scores.

    For each basis (:data:`BASES`), ``{"vip": …, "high": …, "medium": …}``: :func:`boundary` at
    ``vip_share``, ``high_share`` and ``medium_share`` (:func:`boundaries_at`: one selection for
    the three); ``None`` for a basis no training customer has (no amounts: no value).
    ``weights``: how many customers each row stands for (a published summary's ``weights``), so
    the shares are of customers, not rows.
    """
    out: dict[str, dict[str, float] | None] = {}
    for basis, values in zip(BASES, (predicted_clv, expected_purchases)):
        found = boundaries_at(values, [float(settings[f"{tier}_share"]) for tier in TIERS], weights)
        out[basis] = None if found[0] is None else dict(zip(TIERS, found))  # type: ignore[arg-type]
    return out


def fixed_codes(
    predicted_clv: np.ndarray,
    expected_purchases: np.ndarray,
    p_alive: np.ndarray,
    settings: dict[str, Any],
    boundaries: dict[str, Any],
) -> np.ndarray:
    """Segments against fixed boundaries, as positions in :data:`SEGMENTS` (``int8``); see the module docstring.

    Each customer alone: its value where it has one and the model has value boundaries, else its
    expected purchases; at or above a tier's boundary it is in that tier, provided it is above 0
    (when more than a tier's share of the training customers are worth 0, its boundary is 0, and
    a customer worth nothing is still ``low``). Then the P(alive) rules.
    """
    clv = np.asarray(predicted_clv, dtype=float)
    purchases = np.asarray(expected_purchases, dtype=float)
    codes = np.full(len(clv), SEGMENTS.index("low"), dtype=np.int8)
    on_value = ~np.isnan(clv) if boundaries.get("predicted_clv") is not None else np.zeros(len(clv), dtype=bool)
    for tier in reversed(TIERS):  # medium first: each better tier relabels its part
        above = np.zeros(len(clv), dtype=bool)
        if boundaries.get("predicted_clv") is not None:
            above |= on_value & (clv >= boundaries["predicted_clv"][tier]) & (clv > 0)
        if boundaries.get("expected_purchases") is not None:
            above |= ~on_value & (purchases >= boundaries["expected_purchases"][tier]) & (purchases > 0)  # NaN: False
        np.putmask(codes, above, SEGMENTS.index("VIP" if tier == "vip" else tier))
    p_alive = np.asarray(p_alive, dtype=float)
    np.putmask(codes, p_alive < settings["at_risk_below"], SEGMENTS.index("at_risk"))
    np.putmask(codes, p_alive < settings["lost_below"], SEGMENTS.index("lost"))
    return codes


def assign_segments(
    predicted_clv: np.ndarray, p_alive: np.ndarray, settings: dict[str, Any], customer_id: np.ndarray | None = None
) -> np.ndarray:
    """Segments by rank within the scored customers: the rule of models trained before boundaries were fixed.

    Tiers by predicted CLV rank across the scored customers: ``VIP`` (top ``vip_share``; the
    best customer always), ``high`` (to ``high_share``), ``medium`` (to ``medium_share``),
    ``low``; then the P(alive) rules. Rank ties are broken by ``customer_id`` (then input order), the rule the streamed and Spark
    scorers use too, so every engine labels the same customers alike.

    The rule is that of one sort of every customer (CLV descending, missing last, then id as
    text, then input order; rank ``k`` has share ``k / n``), computed without it: each tier is
    the top ``K`` customers for a count ``K`` known from the share, so only its boundary CLV is
    needed (one partial sort for all tiers), and ids are compared only among the customers tied
    at a boundary.
    """
    return np.array(SEGMENTS, dtype=object)[_segment_codes(predicted_clv, p_alive, settings, customer_id)]


def _segment_codes(
    predicted_clv: np.ndarray, p_alive: np.ndarray, settings: dict[str, Any], customer_id: np.ndarray | None = None
) -> np.ndarray:
    """:func:`assign_segments` as positions in :data:`SEGMENTS` (``int8``), without a string per customer."""
    n = len(predicted_clv)
    codes = np.full(n, SEGMENTS.index("low"), dtype=np.int8)
    if n == 0:
        return codes
    # Ascending order of -CLV is descending CLV with NaN last, numpy's order for both sort and
    # partition (-0.0 and 0.0 tie, as in a sort).
    key = -np.asarray(predicted_clv, dtype=float)
    tiers = [(_top_count(float(settings[f"{name}_share"]), n), name) for name in ("medium", "high", "vip")]
    if tiers[-1][0] == 0:  # a small file still has a best customer (else it is in the VIP tier already)
        tiers.append((1, "vip"))
    counts = sorted({count for count, _ in tiers if count > 0})
    partitioned = np.partition(key, [count - 1 for count in counts])
    for count, name in tiers:  # wider tiers first: each narrower one relabels its part
        if count:
            top = _first_ranked(key, count, partitioned[count - 1], customer_id)
            np.putmask(codes, top, SEGMENTS.index("VIP" if name == "vip" else name))
    p_alive = np.asarray(p_alive, dtype=float)
    np.putmask(codes, p_alive < settings["at_risk_below"], SEGMENTS.index("at_risk"))
    np.putmask(codes, p_alive < settings["lost_below"], SEGMENTS.index("lost"))
    return codes


def _top_count(share: float, n: int) -> int:
    """How many ranks ``k = 1..n`` have ``k / n <= share``, with the quotient rounded as numpy does.

    Correctly rounded division is monotone in ``k``, so the ranks that qualify are ``1..K``; the
    estimate ``share × n`` is corrected by the exact comparison the sort-based rule makes.
    """
    if not share >= 1 / n:  # also NaN
        return 0
    count = n if share >= 1 else int(share * n)
    while count < n and (count + 1) / n <= share:
        count += 1
    while count > 0 and count / n > share:
        count -= 1
    return count


def _first_ranked(key: np.ndarray, count: int, boundary: float, customer_id: np.ndarray | None) -> np.ndarray:
    """Mask of the ``count`` customers first in order of ``key`` (ascending, NaN last), then id, then position.

    ``boundary`` is the ``count``-th smallest key. Everyone below it is in; of the customers
    equal to it, as many as are still missing, first by id as text (numpy's ``str`` conversion
    and comparison, as a sort of all ids would use), then by position.
    """
    if np.isnan(boundary):
        inside, tied = ~np.isnan(key), np.flatnonzero(np.isnan(key))
    else:
        inside, tied = key < boundary, np.flatnonzero(key == boundary)
    missing = count - int(np.count_nonzero(inside))
    if missing < len(tied) and customer_id is not None:
        # A stable sort of the tied ids keeps positions in order among equal ids.
        tied = tied[np.argsort(np.asarray(np.asarray(customer_id)[tied], dtype=str), kind="stable")]
    inside[tied[:missing]] = True
    return inside
