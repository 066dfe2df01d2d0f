"""Segments: a label per scored customer from P(alive) and the rank of its predicted CLV.

As the ``segment`` column of :mod:`clvmodel.predict` is described: ``lost`` when P(alive) <
``segments.lost_below``, else ``at_risk`` when below ``segments.at_risk_below`` (risk first: a
valuable customer slipping away needs action more than a tier label); the others are tiered by
predicted CLV rank across the scored customers: ``VIP`` (top ``vip_share``, 1 %), ``high`` (to
``high_share``, 20 %), ``medium`` (to ``medium_share``, 50 %), ``low``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SEGMENTS", "assign_segments"]

SEGMENTS = ("VIP", "high", "medium", "low", "at_risk", "lost")


def assign_segments(
    predicted_clv: np.ndarray, p_alive: np.ndarray, settings: dict[str, Any], customer_id: np.ndarray | None = None
) -> np.ndarray:
    """Segments as described in the module docstring.

    Rank ties are broken by ``customer_id`` (then input order), the rule the streamed and Spark
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
