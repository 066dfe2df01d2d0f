"""Tests for clvmodel.budget.synthetic: the seeded channel mix, and the demo config on synthetic
channels showing grow, hold and cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvmodel.budget as budget
from clvmodel.budget import load_cac_config, run_budget, synthetic_channels

REPO = Path(__file__).resolve().parents[2]


def test_synthetic_channels_fixed_mix_and_seeded() -> None:
    ids = [f"{i:05d}" for i in range(1001)]
    out = synthetic_channels(ids, seed=7)
    assert out["customer_id"].tolist() == ids
    # 1001 * (.40, .25, .20, .15) = 400.4, 250.25, 200.2, 150.15: floors sum to 1000 and the
    # largest remainder (search, .4) gets the last customer.
    counts = out["channel"].value_counts().to_dict()
    assert counts == {"search": 401, "social": 250, "email": 200, "affiliate": 150}
    pd.testing.assert_frame_equal(out, synthetic_channels(ids, seed=7))
    assert not out["channel"].equals(synthetic_channels(ids, seed=8)["channel"])
    custom = synthetic_channels(pd.Series([1, 2, 3, 4]), shares={"x": 1, "y": 3})
    assert sorted(custom["channel"]) == ["x", "y", "y", "y"]


@pytest.mark.parametrize("mean_clv", [70.0, 76.0, 82.0])
def test_demo_config_shows_grow_hold_and_cut(mean_clv: float) -> None:
    # The demo values a channel at a new customer's acquisition value, $74-$78 of revenue on CDNOW
    # (configs/cac_demo.yaml): around that range every verdict shows. Heavy-tailed values like
    # CDNOW's, scaled to the mean under test.
    rng = np.random.default_rng(0)
    clv = rng.gamma(0.5, 1.0, 20000)
    scores = pd.DataFrame({
        "customer_id": [str(i) for i in range(20000)],
        "predicted_clv": clv * mean_clv / clv.mean(),
        "p_alive": rng.uniform(0, 1, 20000),
        "segment": rng.choice(list(budget.SEGMENTS), 20000),
    })
    config = load_cac_config(REPO / "configs" / "cac_demo.yaml")
    result = run_budget(scores, config, customers=synthetic_channels(scores["customer_id"]))
    verdicts = dict(zip(result.channels["channel"], result.channels["verdict"]))
    assert verdicts == {"email": "grow", "search": "grow", "social": "hold", "affiliate": "cut"}
    assert result.allocated == pytest.approx(config.budget)
