"""One pipeline per kind of data: chosen from the config to train, from the model to score."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from clvmodel import pipelines
from clvmodel.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_each_config_chooses_its_pipeline() -> None:
    kinds = {name: pipelines.for_config(load_config(CONFIGS / f"{name}.yaml")).kind
             for name in ("cdnow", "donations", "subscription_regular")}
    assert kinds == {"cdnow": "transactions", "donations": "rfm", "subscription_regular": "subscriptions"}


def test_a_subscription_model_is_trained_rendered_and_scored_by_its_pipeline(tmp_path: Path) -> None:
    """Fader & Hardie (2007), regular cohort, years 0-7: alpha 0.704, beta 1.182."""
    config = load_config(CONFIGS / "subscription_regular.yaml", [f"output.model_dir={tmp_path / 'm'}"])
    pipeline = pipelines.for_config(config)
    result = pipeline.train(config, track=False)
    fitted = result.model.retention_model
    assert (round(fitted.params_["alpha"], 3), round(fitted.params_["beta"], 3)) == (0.704, 1.182)
    assert f"alpha {fitted.params_['alpha']:.4f}" in pipeline.render(result)
    chosen = pipelines.for_model(result.model)
    assert chosen is pipeline and chosen.inputs == ("customer_id", "renewals")
    scores = chosen.score(result.model, pd.DataFrame({"customer_id": ["a"], "renewals": [0]}), {})
    assert list(scores["customer_id"]) == ["a"]
    assert scores["expected_residual_lifetime"].iloc[0] == float(
        fitted.discounted_expected_residual_lifetime(config.clv.discount_rate, 0))


def test_a_summary_model_is_scored_by_the_rfm_pipeline(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "donations.yaml", [f"output.model_dir={tmp_path / 'm'}"])
    result = pipelines.for_config(config).train(config, track=False)
    chosen = pipelines.for_model(result.model)
    assert chosen.kind == "rfm" and set(chosen.params) == {"horizon", "discount_rate", "annual_discount_rate", "margin"}
    rows = pd.DataFrame({"customer_id": ["a"], "frequency": [6.0], "recency": [6.0], "T": [6.0]})
    scores = chosen.score(result.model, rows, {"horizon": 3})
    assert scores["expected_purchases"].iloc[0] == result.model.models["bgbb"].expected_purchases(
        rows["frequency"], rows["recency"], rows["T"], t=3)[0]


def test_only_rows_of_an_id_channel_and_covariates_are_new_customers(tmp_path: Path) -> None:
    """A row with nothing but id, channel and covariates is valued as a new customer; one with any
    other column (a misspelt ``Frequency``) is an RFM row, and the scorer says what it misses."""
    import pytest

    from clvmodel.errors import ClvError

    apparel = Path(__file__).resolve().parent / "data" / "apparel"
    config = load_config(CONFIGS / "apparel.yaml", [
        f"data.source={apparel / 'transactions.csv'}", f"customers.source={apparel / 'customers.csv'}",
        "models=[bgnbd, gamma_gamma]", f"output.model_dir={tmp_path / 'm'}",
    ])
    model = pipelines.for_config(config).train(config, track=False).model
    chosen = pipelines.for_model(model)
    new = chosen.score(model, pd.DataFrame({"customer_id": ["n"], "Channel": [1], "Gender": [0]}), {})
    assert "acquisition_value" in new.columns and list(new["customer_id"]) == ["n"]
    misspelt = pd.DataFrame({"customer_id": ["1"], "Frequency": [6], "Recency": [93.3], "t": [104], "Gender": [0]})
    with pytest.raises(ClvError, match="frequency"):
        chosen.score(model, misspelt, {})
