"""``clvmodel budget`` on the acquisition value of a new customer, on a model made by hand.

The model is written out here, not trained: BG/NBD parameters, a pooled Gamma-Gamma, and two
channels (``search``: pooled spend, first order 30; ``social``: its own Gamma-Gamma, first order
20). Its acquisition value is computed again below from the published formulas (FHL 2005
equation (9), the Gamma-Gamma mean p v / (q - 1)), independently of :mod:`clvmodel.acquisition`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from clvmodel.artifact import TrainedModel
from clvmodel.budget import format_report, parse_cac_config, run_budget
from clvmodel.budget.new_customers import REMAINING_BASIS, channel_aware, new_customer_values
from clvmodel.budget.tables import NOT_IN_MODEL
from clvmodel.cli import main
from clvmodel.config import SegmentConfig
from clvmodel.models.bgnbd import BetaGeoModel
from clvmodel.models.channels import AcquisitionState, ChannelState
from clvmodel.models.gamma_gamma import GammaGammaModel

BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # CDNOW's BG/NBD (FHL 2005), weeks
POOLED = {"p": 6.25, "q": 3.74, "v": 15.44}  # CDNOW's Gamma-Gamma (Fader & Hardie 2013)
SOCIAL = {"p": 5.0, "q": 4.0, "v": 12.0}
FIRST = {"search": 30.0, "social": 20.0}
HORIZON = 39


def _fitted(cls, name: str, params: dict[str, float], sd: float = 0.05):
    names = list(params)
    return cls.from_dict({
        "type": name, "params": params, "standard_errors": {k: sd for k in names},
        "covariance_log_params": {"params": names, "matrix": (np.eye(len(names)) * sd**2).tolist()},
    })


def handmade(*, channel: bool = True, amounts: bool = True, discount_rate: float = 0.0) -> TrainedModel:
    """A trained model written by hand: plain BG/NBD, Gamma-Gamma, two channels."""
    models = {"bgnbd": _fitted(BetaGeoModel, "bgnbd", BG)}
    if amounts:
        models["gamma_gamma"] = _fitted(GammaGammaModel, "gamma_gamma", POOLED)
    channels = {
        "search": ChannelState(customers=300, repeat_customers=20, first_order_value=FIRST["search"] if amounts else None,
                               spend=None, profiles=[({}, 1.0)]),
        "social": ChannelState(customers=200, repeat_customers=80, first_order_value=FIRST["social"] if amounts else None,
                               spend=_fitted(GammaGammaModel, "gamma_gamma", SOCIAL) if amounts else None,
                               profiles=[({}, 1.0)]),
    }
    acquisition = AcquisitionState(channel="Channel" if channel else None, covariates=[], purchase_model="bgnbd",
                                   min_repeat_customers=50, channels=channels if channel else {"all": channels["search"]})
    return TrainedModel(
        name="handmade", time_unit="week", models=models,
        clv={"horizon": HORIZON, "discount_rate": discount_rate, "margin": 1.0},
        segments=SegmentConfig().model_dump(), columns={"customer_id": "id", "date": "date", "amount": "amount"},
        primary="bgnbd", acquisition=acquisition,
    )


def expected_new(t: np.ndarray) -> np.ndarray:
    """E[X(t)] of a new BG/NBD customer, equation (9) of Fader, Hardie & Lee (2005)."""
    r, alpha, a, b = (BG[k] for k in ("r", "alpha", "a", "b"))
    t = np.asarray(t, dtype=float)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def by_hand(channel: str, margin: float, discount_rate: float = 0.0) -> tuple[float, np.ndarray]:
    """The acquisition value and its per-period path, from the formulas alone."""
    spend = SOCIAL if channel == "social" else POOLED
    p, q, v = (spend[k] for k in ("p", "q", "v"))
    mean_spend = p * v / (q - 1)
    k = np.arange(1, HORIZON + 1)
    increments = np.diff(expected_new(np.arange(0, HORIZON + 1)))
    path = margin * np.concatenate([[FIRST[channel]], increments * mean_spend / (1 + discount_rate) ** k])
    return float(path.sum()), path


def scores() -> pd.DataFrame:
    """Existing customers: search ones have a long tenure and little left, social ones more."""
    return pd.DataFrame({
        "customer_id": ["s1", "s2", "s3", "o1", "o2"],
        "predicted_clv": [4.0, 6.0, 2.0, 30.0, 50.0],
        "p_alive": [0.2, 0.3, 0.1, 0.9, 0.8],
        "segment": ["low", "low", "lost", "high", "VIP"],
        "channel": ["search", "search", "search", "social", "social"],
        "frequency": [1, 2, 0, 4, 6], "recency": [10.0, 20.0, 0.0, 60.0, 70.0], "T": [78.0] * 5,
        "monetary_value": [20.0, 25.0, 0.0, 30.0, 35.0],
    })


CAC = {"search": {"cac": 10.0}, "social": {"cac": 40.0}}


def test_ltv_cac_is_acquisition_value_over_cac_exactly() -> None:
    trained = handmade()
    assert channel_aware(trained)
    config = parse_cac_config({"channels": CAC, "margin": 0.5, "target_ratio": 3, "budget": 1000})
    values = new_customer_values(trained, config.margin, draws=200)
    result = run_budget(scores(), config, new_values=values)
    ch = result.channels.set_index("channel")
    for name in ("search", "social"):
        value, _ = by_hand(name, margin=0.5)
        assert ch.loc[name, "acquisition_value"] == pytest.approx(value, rel=1e-10)
        # Exactly: the ratio is the value divided by the CAC, nothing else.
        assert ch.loc[name, "ltv_cac"] == ch.loc[name, "acquisition_value"] / CAC[name]["cac"]
        assert ch.loc[name, "max_allowable_cac"] == ch.loc[name, "acquisition_value"] / 3
        assert ch.loc[name, "acquisition_value_lower"] < ch.loc[name, "acquisition_value"] < ch.loc[name, "acquisition_value_upper"]
        assert ch.loc[name, "ltv_cac_lower"] == ch.loc[name, "acquisition_value_lower"] / CAC[name]["cac"]
        # The remaining CLV of existing customers is still reported beside it, for comparison.
        assert ch.loc[name, "mean_clv"] == scores().query("channel == @name")["predicted_clv"].mean()
        assert ch.loc[name, "mean_clv_margin"] == 0.5 * ch.loc[name, "mean_clv"]  # same basis as the value
    assert set(ch["value_basis"]) == {values.basis}
    assert values.basis.startswith("acquisition value of a new customer: first order + 39 weeks")
    # The allocation values an acquired customer at the acquisition value: linear channels at
    # value / CAC per dollar, expected_clv = value x customers.
    assert ch.loc["search", "marginal_ltv_cac"] == pytest.approx(ch.loc["search", "ltv_cac"], rel=1e-12)
    assert ch.loc["search", "expected_clv"] == pytest.approx(
        ch.loc["search", "acquisition_value"] * ch.loc["search", "expected_customers"], rel=1e-12)
    # The segment table keeps resting on the remaining CLV of existing customers.
    assert result.segments["total_clv"].sum() == scores()["predicted_clv"].sum()


def test_payback_counts_the_first_order() -> None:
    trained = handmade(discount_rate=0.01)
    margin = 0.5
    first_margin = margin * FIRST["search"]  # 15
    _, path = by_hand("search", margin, discount_rate=0.01)
    cumulative = np.cumsum(path)
    later = float(np.argmax(cumulative >= 19.0))  # first period whose cumulative value covers 19
    assert later >= 1
    config = parse_cac_config({"channels": {"search": {"cac": first_margin - 0.01}, "social": {"cac": 19.0}},
                               "margin": margin})
    # social: its own first order is 10 of margin, so CAC 19 needs repeat purchases; compute its path.
    _, social_path = by_hand("social", margin, discount_rate=0.01)
    social_payback = float(np.argmax(np.cumsum(social_path) >= 19.0))
    values = new_customer_values(trained, margin, draws=0)
    for name in ("search", "social"):
        assert values.periods[name] == pytest.approx(by_hand(name, margin, 0.01)[1], rel=1e-10)
        assert values.periods[name].sum() == pytest.approx(values.table.loc[name, "acquisition_value"], rel=1e-12)
    table = run_budget(scores(), config, new_values=values).channels.set_index("channel")
    # A CAC below margin x first order pays back at period 0, the first order itself.
    assert table.loc["search", "payback_periods"] == 0
    assert table.loc["social", "payback_periods"] == social_payback >= 1
    # A CAC that exactly equals the first order's margin is covered at period 0 too.
    config = parse_cac_config({"channels": {"search": {"cac": first_margin}}, "margin": margin})
    assert run_budget(scores().query("channel == 'search'"), config, new_values=values).channels[
        "payback_periods"].iloc[0] == 0
    # Above the whole horizon's value: never paid back, no "grow".
    config = parse_cac_config({"channels": {"search": {"cac": 1000.0}}, "margin": margin})
    row = run_budget(scores().query("channel == 'search'"), config, new_values=values).channels.iloc[0]
    assert math.isnan(row["payback_periods"]) and row["verdict"] == "cut"


def test_a_channel_the_model_never_saw() -> None:
    values = new_customer_values(handmade(), 0.5, draws=0)
    config = parse_cac_config({"channels": {**CAC, "tiktok": {"cac": 5.0, "min_spend": 100}}, "margin": 0.5,
                               "budget": 1000})
    result = run_budget(scores(), config, new_values=values)
    row = result.channels.set_index("channel").loc["tiktok"]
    assert row["verdict"] == NOT_IN_MODEL and math.isnan(row["acquisition_value"]) and math.isnan(row["ltv_cac"])
    assert row["allocated_spend"] == 100  # its min_spend, nothing more
    assert math.isnan(row["marginal_ltv_cac"]) and math.isnan(row["expected_clv"])  # unknown, not 0
    said = [w for w in result.warnings if "tiktok" in w]
    assert said == ["tiktok: not a channel of the model, so no acquisition value, verdict 'not in model' and only its "
                    "min_spend; retrain with customers of that channel to value it"]
    # The other way round: a channel the model knows needs no existing customers in the scores.
    only_search = scores().query("channel == 'search'")
    social = run_budget(only_search, config, new_values=values).channels.set_index("channel").loc["social"]
    assert social["customers"] == 0 and social["verdict"] == "cut"  # 0.5 x 43.9 / 40 < 1, not "no data"
    assert social["acquisition_value"] == pytest.approx(by_hand("social", 0.5)[0], rel=1e-10)


def test_report_says_which_value_each_column_rests_on() -> None:
    config = parse_cac_config({"channels": CAC, "margin": 0.5, "budget": 1000})
    with_model = format_report(run_budget(scores(), config, new_values=new_customer_values(handmade(), 0.5, draws=50)))
    assert "Value: acquisition value of a new customer: first order + 39 weeks" in with_model
    assert f"mean_clv_margin (margin x mean_clv) is the {REMAINING_BASIS}" in with_model
    assert "an acquired customer is valued at its channel's acquisition_value" in with_model
    header = next(line for line in with_model.splitlines() if line.lstrip().startswith("channel"))
    assert header.split() == ["channel", "customers", "mean_clv_margin", "acquisition_value", "interval", "cac",
                              "ltv_cac", "max_allowable_cac", "payback_periods", "verdict"]
    without = format_report(run_budget(scores(), parse_cac_config({"channels": CAC, "horizon": 39})))
    assert f"Value: {REMAINING_BASIS}." in without
    assert "acquisition_value" not in without
    assert "remaining CLV of existing customers" in without.split("Budget allocation")[1]


# --- through the real CLI ---------------------------------------------------------------------


def _files(tmp_path: Path, trained: TrainedModel | None, cac: str, table: pd.DataFrame | None = None) -> dict[str, Path]:
    paths = {"scores": tmp_path / "scores.csv", "cac": tmp_path / "cac.yaml", "model": tmp_path / "model.json"}
    (scores() if table is None else table).to_csv(paths["scores"], index=False)
    paths["cac"].write_text(cac)
    if trained is not None:
        trained.write_json(paths["model"])
    return paths


CAC_YAML = "margin: 0.5\nbudget: 1000\nhorizon: 39\nchannels: {search: {cac: 10}, social: {cac: 40}}\n"


def test_cli_budget_on_acquisition_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _files(tmp_path, handmade(), CAC_YAML)
    output = tmp_path / "out.csv"
    assert main(["budget", "--scores", str(paths["scores"]), "--cac", str(paths["cac"]), "--model", str(paths["model"]),
                 "--output", str(output)]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(output).set_index("channel")
    assert {"acquisition_value", "acquisition_value_lower", "acquisition_value_upper", "ltv_cac", "max_allowable_cac",
            "payback_periods", "value_basis", "mean_clv"} <= set(table.columns)
    for name in ("search", "social"):
        assert table.loc[name, "acquisition_value"] == pytest.approx(by_hand(name, 0.5)[0], rel=1e-10)
        assert table.loc[name, "ltv_cac"] == pytest.approx(table.loc[name, "acquisition_value"] / CAC[name]["cac"],
                                                           rel=1e-15)
    assert table["value_basis"].str.startswith("acquisition value of a new customer").all()
    assert "Value: acquisition value of a new customer" in out
    assert "rests on the remaining CLV" not in out


@pytest.mark.parametrize("with_model", [False, True])
def test_cli_without_a_channel_aware_model_is_labelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], with_model: bool
) -> None:
    paths = _files(tmp_path, handmade(channel=False) if with_model else None, CAC_YAML)
    output = tmp_path / "out.csv"
    args = ["budget", "--scores", str(paths["scores"]), "--cac", str(paths["cac"]), "--output", str(output)]
    assert main(args + (["--model", str(paths["model"])] if with_model else [])) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(output)
    assert "acquisition_value" not in table.columns
    assert (table["value_basis"] == "remaining CLV of existing customers, not the value of a new customer").all()
    assert "Value: remaining CLV of existing customers, not the value of a new customer." in out
    if with_model:
        assert ("WARNING: the model has no acquisition channel, so it cannot value a new customer: LTV:CAC rests on "
                "the remaining CLV of existing customers") in out


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unseen", "none of the CAC config's channels (Search, Social) is a channel of the model (search, social)"),
        ("no_amounts", "the model has no acquisition value for any channel"),
        ("missing_model", "not found"),
        ("output_is_model", "is the same file as --model"),
    ],
)
def test_cli_bad_inputs_one_line_exit_2_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    table = scores()
    cac = CAC_YAML
    if case == "unseen":  # the CAC config and the scores spell the channels otherwise than the training data
        table["channel"] = table["channel"].str.capitalize()
        cac = CAC_YAML.replace("search", "Search").replace("social", "Social")
    paths = _files(tmp_path, handmade(amounts=case != "no_amounts"), cac, table)
    model = tmp_path / "nowhere" if case == "missing_model" else paths["model"]
    output = paths["model"] if case == "output_is_model" else tmp_path / "out.csv"
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["budget", "--scores", str(paths["scores"]), "--cac", str(paths["cac"]), "--model", str(model),
                 "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no file written
    if case == "output_is_model":
        assert TrainedModel.from_document(json.loads(paths["model"].read_text())).name == "handmade"  # intact
