"""Time in the units people plan in (issue 15): horizons with units, annual discount rates, month and year.

The parser and the rate conversion against exact arithmetic; the 3-year / 10 % example on the
CDNOW model, given with units and by hand, through the CLI and the REST server; the warning for a
rate that looks annual; the config's round trip; a transaction log summarised and trained in months.
"""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest

from clvmodel import units
from clvmodel.cli import main
from clvmodel.config import apply_overrides, parse_config
from clvmodel.errors import ClvError

REPO = Path(__file__).resolve().parents[1]
APPAREL = REPO / "tests" / "data" / "apparel" / "transactions.csv"

#: 10 % a year per week, computed here independently of clvmodel.units: (1 + r)^(7 / 365.25) − 1.
WEEKLY_10 = 1.1 ** (7 / 365.25) - 1


# --- the parser -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "unit", "periods", "exact"),
    [
        ("3 years", "week", 156, Fraction(3 * 1461, 4 * 7)),  # 156.536…: whole weeks within 3 years
        ("3y", "week", 156, Fraction(1095.75) / 7),
        ("3 yr", "week", 156, Fraction(1095.75) / 7),
        ("36m", "week", 156, Fraction(36 * 1461, 48 * 7)),
        ("36 months", "month", 36, Fraction(36)),
        ("3 years", "month", 36, Fraction(36)),
        ("156w", "week", 156, Fraction(156)),
        ("1095d", "week", 156, Fraction(1095, 7)),  # 156.43
        ("1 year", "day", 365, Fraction(1461, 4)),  # 365.25 days
        ("4 years", "day", 1461, Fraction(1461)),
        ("1 month", "day", 30, Fraction(1461, 48)),  # 30.4375 days
        ("18 months", "year", 1, Fraction(3, 2)),
        ("2 weeks", "day", 14, Fraction(14)),
        ("1.5y", "month", 18, Fraction(18)),
        ("3 YEARS", "week", 156, Fraction(4383, 28)),
        (52, "week", 52, Fraction(52)),  # a bare number stays in the model's unit
        ("52", "week", 52, Fraction(52)),
        (39.0, "day", 39, Fraction(39)),
    ],
)
def test_horizons_convert_exactly_and_round_down_to_whole_periods(given, unit, periods, exact) -> None:
    horizon = units.parse_horizon(given, unit)
    assert (horizon.periods, horizon.unit, horizon.exact) == (periods, unit, exact)


def test_the_horizon_used_is_described() -> None:
    assert units.parse_horizon("3 years", "week").describe() == "156 weeks (3 years = 156.54 weeks; whole weeks within it)"
    assert units.parse_horizon("3 years", "month").describe() == "36 months (3 years)"
    assert units.parse_horizon("156w", "week").describe() == "156 weeks"
    assert units.parse_horizon(1, "year").describe() == "1 year"


@pytest.mark.parametrize(
    ("given", "unit", "match"),
    [
        ("3 lightyears", "week", r"^--horizon '3 lightyears' is not a horizon; use e\.g\. \"3 years\", 3y, 36m, 156w, 1095d"),
        ("-3y", "week", r"^--horizon '-3y' is not a horizon"),
        ("three years", "week", r"^--horizon 'three years' is not a horizon"),
        ("", "week", r"^--horizon '' is not a horizon"),
        ("3 years ago", "week", r"is not a horizon"),
        ("0w", "week", r"^--horizon must be > 0, got '0w'"),
        ("0.5", "week", r"^--horizon must be a whole number of periods, got 0\.5; write the unit for a part"),
        (39.5, "week", r"^--horizon must be a whole number of periods, got 39\.5"),
        ("2 days", "week", r"^--horizon 2 days is 0\.29 weeks, less than one week \(the model's unit\); use at least 1 week$"),
        ("101 years", "year", r"^--horizon 101 years is more than 100 years; use at most 100 years"),
        ("5218", "week", r"^--horizon 5218 is more than 100 years; use at most 5,217 weeks"),
        (True, "week", r"^--horizon must be a horizon, got True"),
        (float("nan"), "week", r"^--horizon must be a finite number of periods, got nan"),
        ("x" * 10_000, "week", r"is not a horizon"),
        ("\u0663y", "week", r"is not a horizon"),  # an Arabic-Indic 3: digits are ASCII, as the unit letters
    ],
)
def test_bad_horizons_are_one_line(given, unit, match) -> None:
    with pytest.raises(ClvError, match=match) as err:
        units.parse_horizon(given, unit, name="--horizon")
    assert "\n" not in str(err.value) and len(str(err.value)) < 300


# --- rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("unit", "days"), [("day", 1), ("week", 7), ("month", 365.25 / 12), ("year", 365.25)])
def test_an_annual_rate_is_the_same_present_value_over_a_year(unit, days) -> None:
    rate = units.per_period_rate(0.10, unit)
    assert rate == pytest.approx(1.1 ** (days / 365.25) - 1, rel=1e-13)
    assert (1 + rate) ** (365.25 / days) == pytest.approx(1.10, rel=1e-13)


def test_per_period_rates_that_look_annual_warn() -> None:
    def warns(unit: str, rate: float) -> bool:
        return bool(units.resolve(unit, 1, rate).warnings())

    assert warns("week", 0.05) and not warns("week", 0.0499)
    assert warns("day", 0.01) and not warns("day", 0.0099)
    assert warns("month", 0.10) and not warns("month", 0.0999)
    assert not warns("year", 0.5)
    assert not units.resolve("week", 1, annual_discount_rate=0.10).warnings()  # given per year: no doubt
    (line,) = units.resolve("week", 39, 0.1).warnings()
    assert line == ("discount rate 0.1 is per week (14,348 % a year); for 10 % a year pass --annual-discount-rate 0.1 "
                    "(config: clv.annual_discount_rate)")


def test_one_rate_or_the_other() -> None:
    with pytest.raises(ClvError, match=r"^give --discount-rate \(per period\) or --annual-discount-rate \(per year\), not both$"):
        units.resolve("week", 39, 0.01, 0.1)
    with pytest.raises(ClvError, match=r"^--annual-discount-rate must be a number >= 0, got -0\.1"):
        units.resolve("week", 39, annual_discount_rate=-0.1)
    # Either rate given replaces the model's, whichever way the model's was given.
    assert units.resolve("week", None, 0.01, defaults={"horizon": 39, "annual_discount_rate": 0.1}).discount_rate == 0.01
    assert units.resolve("week", None, None, 0.1, defaults={"horizon": 39, "discount_rate": 0.5}).discount_rate == \
        pytest.approx(WEEKLY_10, rel=1e-13)


# --- the config -------------------------------------------------------------------------------


def _raw(**clv) -> dict:
    return {"name": "t", "data": {"source": "x.csv"}, "time_unit": "week", "clv": clv}


def test_the_config_takes_a_horizon_with_its_unit_and_an_annual_rate_and_round_trips() -> None:
    config = parse_config(_raw(horizon="3 years", annual_discount_rate=0.10, margin=0.3))
    assert config.clv_used() == {"horizon": 156, "discount_rate": pytest.approx(WEEKLY_10, rel=1e-13), "margin": 0.3}
    dumped = config.model_dump(mode="json")
    assert dumped["clv"] == {"horizon": "3 years", "discount_rate": 0.0, "annual_discount_rate": 0.1, "margin": 0.3}
    assert parse_config(dumped) == config  # as written, not as converted
    assert parse_config(apply_overrides(_raw(), ["clv.horizon=36m"])).clv_used()["horizon"] == 156
    assert parse_config(apply_overrides(_raw(), ["clv.horizon=52"])).clv_used()["horizon"] == 52
    assert parse_config({**_raw(horizon="1y"), "time_unit": "month"}).clv_used()["horizon"] == 12
    with pytest.raises(ClvError, match=r"^config: clv\.horizon 101 years is more than 100 years"):
        parse_config(_raw(horizon="101 years"))


# --- the 3-year / 10 % example on the CDNOW model, both ways ----------------------------------


@pytest.fixture(scope="module")
def cdnow_rfm_file(trained_cdnow, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("units") / "rfm.csv"
    trained_cdnow.result.rfm.summary.to_csv(path, index=False)
    return path


def _score(model: Path, rfm: Path, output: Path, capsys, *args: str) -> tuple[pd.DataFrame, str, str]:
    assert main(["score", "--model", str(model), "--input", str(rfm), "--output", str(output), *args]) == 0
    captured = capsys.readouterr()
    return pd.read_csv(output), captured.out, captured.err


def test_three_years_at_ten_percent_equals_the_hand_conversion(trained_cdnow, cdnow_rfm_file, tmp_path, capsys) -> None:
    model = trained_cdnow.model_dir
    units_way, out, err = _score(model, cdnow_rfm_file, tmp_path / "a.csv", capsys,
                                 "--horizon", "3 years", "--annual-discount-rate", "0.10")
    hand_way, out_hand, _ = _score(model, cdnow_rfm_file, tmp_path / "b.csv", capsys,
                                   "--horizon", "156", "--discount-rate", repr(WEEKLY_10))
    pd.testing.assert_frame_equal(units_way, hand_way, check_exact=False, rtol=1e-12)
    assert err == ""
    assert ("score: horizon 156 weeks (3 years = 156.54 weeks; whole weeks within it); discount 0.0018282846 per week "
            "(10 % a year)") in out
    assert "score: horizon 156 weeks; discount 0.0018282846 per week" in out_hand
    # ... and not what a 10 % typed per period gives, which warns on stderr and still runs.
    per_week, _, err = _score(model, cdnow_rfm_file, tmp_path / "c.csv", capsys, "--horizon", "3y",
                              "--discount-rate", "0.10")
    assert err.startswith("clvmodel: warning: discount rate 0.1 is per week (14,348 % a year); for 10 % a year pass "
                          "--annual-discount-rate 0.1") and err.count("\n") == 1
    assert per_week["predicted_clv"].mean() < units_way["predicted_clv"].mean() / 5


def test_acquisition_and_rest_take_the_same_units(trained_cdnow, tmp_path, capsys) -> None:
    from clvmodel import load_model, serve

    model = trained_cdnow.model_dir
    tables = []
    for args in (["--horizon", "3 years", "--annual-discount-rate", "0.1"],
                 ["--horizon", "156", "--discount-rate", repr(WEEKLY_10)]):
        output = tmp_path / f"acq{len(tables)}.csv"
        assert main(["acquisition", "--model", str(model), "--output", str(output), "--draws", "0", *args]) == 0
        tables.append(pd.read_csv(output))
    out = capsys.readouterr().out
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=False, rtol=1e-12)
    assert "acquisition: horizon 156 weeks (3 years = 156.54 weeks; whole weeks within it); discount 0.0018282846 " \
           "per week (10 % a year)" in out

    trained = load_model(model)
    rows = {"columns": ["customer_id", "frequency", "recency", "T", "monetary_value"],
            "data": [["1", 2, 30.0, 38.0, 25.0], ["2", 0, 0.0, 38.0, 0.0]]}

    def ask(params: dict) -> dict:
        body = json.dumps({"dataframe_split": rows, "params": params}).encode()
        return json.loads(serve.answer(body, trained, serve.Limits()))

    with_units = ask({"horizon": "3 years", "annual_discount_rate": 0.1})
    by_hand = ask({"horizon": 156, "discount_rate": WEEKLY_10})
    assert [r["predicted_clv"] for r in with_units["predictions"]] == \
        pytest.approx([r["predicted_clv"] for r in by_hand["predictions"]], rel=1e-12)
    assert with_units["valuation"]["horizon"] == 156 and with_units["valuation"]["horizon_given"] == "3 years"
    assert with_units["valuation"]["description"].startswith("horizon 156 weeks (3 years = 156.54 weeks")
    assert ask({"discount_rate": 0.1})["valuation"]["warnings"][0].startswith("discount rate 0.1 is per week")
    with pytest.raises(ClvError, match=r"^params\.horizon '3 lightyears' is not a horizon"):
        ask({"horizon": "3 lightyears"})
    with pytest.raises(ClvError, match=r"^give params\.discount_rate .* not both$"):
        ask({"discount_rate": 0.01, "annual_discount_rate": 0.1})


def test_formula_takes_a_lifetime_and_an_annual_rate_with_a_period(capsys) -> None:
    assert main(["formula", "--fee", "10", "--periods", "3 years", "--period", "week", "--annual-discount-rate", "0.1",
                 "--json"]) == 0
    with_units = json.loads(capsys.readouterr().out)["ltv"]
    assert main(["formula", "--fee", "10", "--periods", repr(1095.75 / 7), "--discount-rate", repr(WEEKLY_10),
                 "--json"]) == 0
    assert with_units == pytest.approx(json.loads(capsys.readouterr().out)["ltv"], rel=1e-12)
    assert main(["formula", "--fee", "10", "--periods", "3y"]) == 2
    assert "--periods '3y' has a unit; say what a period is with --period" in capsys.readouterr().err
    assert main(["formula", "--fee", "10", "--periods", "12", "--annual-discount-rate", "0.1"]) == 2
    assert "--annual-discount-rate needs --period" in capsys.readouterr().err
    assert main(["formula", "--fee", "10", "--periods", "3 years", "--period", "week", "--discount-rate", "0.1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.endswith("units: a period is a week; --periods 3 years = 156.536 weeks; discount 0.1 per week\n")
    assert captured.err == ("clvmodel: warning: --discount-rate 0.1 is per week; for 10 % a year pass "
                            "--annual-discount-rate 0.1\n")


# --- month and year for a transaction log -----------------------------------------------------


def test_a_transaction_log_in_months_is_days_over_365_25_by_12(tmp_path, capsys) -> None:
    output = tmp_path / "rfm.csv"
    assert main(["rfm", "--input", str(APPAREL), "--customer-id", "Id", "--date", "Date", "--amount", "Price",
                 "--time-unit", "month", "--calibration-end", "2005-12-31", "--output", str(output)]) == 0
    summary = pd.read_csv(output, dtype={"customer_id": str}).set_index("customer_id")
    log = pd.read_csv(APPAREL, dtype={"Id": str}, parse_dates=["Date"])
    first = log[log["Id"] == "1"]["Date"].min().date()
    # Customer 1 first bought on 2005-01-02: 363 days before 2005-12-31, 363 / 30.4375 months.
    assert first == dt.date(2005, 1, 2)
    assert summary.loc["1", "T"] == 363 / 30.4375
    assert summary.loc["1", "duration_holdout"] == (log["Date"].max().date() - dt.date(2005, 12, 31)).days / 30.4375
    days = (pd.Timestamp("2005-12-31") - log.groupby("Id")["Date"].min()).dt.days
    cohort = days[days >= 0]
    pd.testing.assert_series_equal(summary["T"].sort_index(), (cohort / 30.4375).sort_index(), check_names=False)

    assert main(["rfm", "--input", str(APPAREL), "--customer-id", "Id", "--date", "Date", "--amount", "Price",
                 "--time-unit", "year", "--output", str(tmp_path / "y.csv")]) == 0
    years = pd.read_csv(tmp_path / "y.csv", dtype={"customer_id": str}).set_index("customer_id")
    end = log["Date"].max().date()
    assert years.loc["1", "T"] == (end - first).days / 365.25


def test_a_model_trained_in_months_scores_in_years(tmp_path, capsys) -> None:
    config = tmp_path / "apparel.yaml"
    config.write_text(
        "name: apparel_months\n"
        f"data: {{source: {APPAREL}, columns: {{customer_id: Id, date: Date, amount: Price}}}}\n"
        "time_unit: month\ncalibration_end: 2005-12-31\nmodels: [bgnbd, gamma_gamma]\nmodel: bgnbd\n"
        "clv: {horizon: 2 years, annual_discount_rate: 0.1}\nintervals: {draws: 0}\n"
        f"tracking: {{enabled: false}}\noutput: {{model_dir: {tmp_path / 'model'}}}\n",
        encoding="utf-8",
    )
    assert main(["train", str(config), "--no-tracking"]) == 0
    out = capsys.readouterr().out
    assert "rfm " in out and "(months)" in out
    assert "horizon 24 months (2 years); discount 0.0079741404 per month (10 % a year)" in out
    rfm = tmp_path / "rfm.csv"
    assert main(["rfm", "--config", str(config), "--output", str(rfm)]) == 0
    scores, out, _ = _score(tmp_path / "model", rfm, tmp_path / "s.csv", capsys)
    assert "score: horizon 24 months (2 years); discount 0.0079741404 per month (10 % a year)" in out
    in_months, _, _ = _score(tmp_path / "model", rfm, tmp_path / "m.csv", capsys, "--horizon", "24")
    pd.testing.assert_frame_equal(scores, in_months)


def test_budget_and_whatif_take_the_same_units(trained_cdnow, cdnow_rfm_file, tmp_path, capsys) -> None:
    model = trained_cdnow.model_dir
    scores, _, _ = _score(model, cdnow_rfm_file, tmp_path / "s.csv", capsys)
    channels = tmp_path / "channels.csv"
    names = ["email", "search", "social", "affiliate"]  # the channels of configs/cac_demo.yaml
    pd.DataFrame({"customer_id": scores["customer_id"].astype(str),
                  "channel": [names[i % 4] for i in range(len(scores))]}).to_csv(channels, index=False)
    ways = (["--horizon", "3 years", "--annual-discount-rate", "0.1"], ["--horizon", "156", "--discount-rate", repr(WEEKLY_10)])
    budgets, printed = [], []
    for i, args in enumerate(ways):
        output = tmp_path / f"budget{i}.csv"
        assert main(["budget", "--scores", str(tmp_path / "s.csv"), "--customers", str(channels), "--cac",
                     str(REPO / "configs" / "cac_demo.yaml"), "--model", str(model), "--output", str(output), *args]) == 0
        budgets.append(pd.read_csv(output))
        printed.append(capsys.readouterr().out)
    pd.testing.assert_frame_equal(budgets[0], budgets[1], check_exact=False, rtol=1e-12)
    # Payback walks the 156 weeks asked for, not the model's own 39.
    assert budgets[0]["payback_periods"].max() > 39
    assert "  valued over horizon 156 weeks (3 years = 156.54 weeks; whole weeks within it); discount 0.0018282846 " \
           "per week (10 % a year)" in printed[0]
    assert main(["budget", "--scores", str(tmp_path / "s.csv"), "--customers", str(channels), "--cac",
                 str(REPO / "configs" / "cac_demo.yaml"), "--output", str(tmp_path / "b.csv"), "--horizon", "3y"]) == 2
    assert "--horizon needs --model" in capsys.readouterr().err

    tables = []
    for i, args in enumerate(ways):
        output = tmp_path / f"whatif{i}.csv"
        assert main(["whatif", "--model", str(model), "--input", str(cdnow_rfm_file), "--output", str(output),
                     "--retention", "+5pp", *args]) == 0
        tables.append(pd.read_csv(output))
    assert "horizon 156 weeks, discount rate 0.00182828 per week" in capsys.readouterr().out
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=False, rtol=1e-12)
