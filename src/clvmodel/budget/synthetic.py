"""SYNTHETIC demo data: acquisition channels for datasets that record none (CDNOW)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clvmodel.errors import ClvError

SYNTHETIC_CHANNEL_SHARES: dict[str, float] = {
    "search": 0.40,
    "social": 0.25,
    "email": 0.20,
    "affiliate": 0.15,
}
"""SYNTHETIC channel mix used by :func:`synthetic_channels` for the CDNOW demo."""


def synthetic_channels(
    customer_ids: Sequence[Any] | pd.Series | np.ndarray,
    seed: int = 2024,
    shares: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """SYNTHETIC acquisition channels for datasets that have none (the CDNOW demo).

    CDNOW records no acquisition channel; this invents one so ``clvmodel budget`` can be
    demonstrated. It is **not** data: channels are assigned uniformly at random, so every
    channel's CLV distribution is the same up to noise and differences in LTV:CAC come from the
    (equally synthetic) CACs of ``configs/cac_demo.yaml``.

    Exactly ``round(share * n)`` customers per channel (largest-remainder rounding) are chosen by
    a permutation from ``numpy.random.default_rng(seed)``, so the mix is fixed and the result is
    reproducible. Default shares: :data:`SYNTHETIC_CHANNEL_SHARES` (search 40%, social 25%,
    email 20%, affiliate 15%).

    Returns
    -------
    DataFrame
        ``customer_id`` (as given, same order), ``channel``.
    """
    mix = dict(shares if shares is not None else SYNTHETIC_CHANNEL_SHARES)
    weights = np.array(list(mix.values()), dtype=float)
    if not len(mix) or (weights < 0).any() or weights.sum() <= 0:
        raise ClvError("synthetic channel shares must be non-negative with a positive sum")
    ids = pd.Series(list(customer_ids) if not isinstance(customer_ids, pd.Series)
                    else customer_ids.to_numpy())
    n = len(ids)
    exact = weights / weights.sum() * n
    counts = np.floor(exact).astype(int)
    # Largest remainder: hand the leftover customers to the channels that lost most to flooring.
    leftover = n - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:leftover]] += 1
    labels = np.repeat(np.array(list(mix), dtype=object), counts)
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"customer_id": ids.to_numpy(), "channel": rng.permutation(labels)})
