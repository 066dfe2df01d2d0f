"""clvmodel formula: the seeds' LTV arithmetic and the 3:1 rule, through the library and the real CLI entry."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from clvmodel.cli import main
from clvmodel.clv import discount_factors
from clvmodel.errors import ClvError
from clvmodel.formula import MAX_PERIODS, lifetime_value


#: The first seed example: $50 orders, twice a month, kept 12 months.
SEED = ["--order-value", "50", "--purchases-per-period", "2", "--periods", "12"]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["formula", *args, "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return json.loads(captured.out)


# --- the seeds' examples, exactly ------------------------------------------------------------------


@pytest.mark.parametrize(("args", "ltv"), [
    (["--order-value", "50", "--purchases-per-period", "2", "--periods", "12"], 1200.0),  # $50 twice a month, 12 months
    (["--fee", "30", "--periods", "24"], 720.0),  # $30 a month for 24 months
    (["--order-value", "50", "--purchases-per-period", "5", "--periods", "7"], 1750.0),  # 5 a year for 7 years
])
def test_the_seed_examples(capsys, args, ltv):
    assert run_json(capsys, *args) == {"ltv": ltv}


def test_the_3_to_1_example_a_100_cac_needs_an_ltv_of_300(capsys):
    assert run_json(capsys, "--fee", "100", "--periods", "3", "--cac", "100") == {
        "ltv": 300.0, "ltv_cac": 3.0, "max_allowable_cac": 100.0, "verdict": "grow"}
    below = run_json(capsys, "--fee", "99.99", "--periods", "3", "--cac", "100")
    assert below["verdict"] == "hold" and below["max_allowable_cac"] < 100
    assert run_json(capsys, "--fee", "30", "--periods", "3", "--cac", "100")["verdict"] == "cut"  # LTV 90 < CAC
    # The retailer seed at a $100 CAC: 12:1, and up to $400 may be spent per customer.
    assert run_json(capsys, *SEED, "--cac", "100") == {
        "ltv": 1200.0, "ltv_cac": 12.0, "max_allowable_cac": 400.0, "verdict": "grow"}
    # The ratio is on margin, as clvmodel budget's: at 30 % margin the LTV is 360, so 3.6:1 and up to $120.
    answer = run_json(capsys, "--order-value", "50", "--purchases-per-period", "2", "--periods", "12", "--cac", "100",
                      "--margin", "0.3")
    assert answer.pop("verdict") == "grow"
    assert answer == pytest.approx({"ltv": 360.0, "ltv_cac": 3.6, "max_allowable_cac": 120.0}, rel=1e-12)
    # A stricter target: 1,200 / 100 = 12 < 15.
    answer = run_json(capsys, "--order-value", "50", "--purchases-per-period", "2", "--periods", "12", "--cac", "100",
                      "--target-ratio", "15")
    assert answer == {"ltv": 1200.0, "ltv_cac": 12.0, "max_allowable_cac": 80.0, "verdict": "hold"}


def test_text_states_the_formula_with_its_inputs(capsys):
    assert main(["formula", *SEED, "--cac", "100"]) == 0
    assert capsys.readouterr().out == (
        "formula: LTV = order value × purchases per period × periods × margin\n"
        "           = 50 × 2 × 12 × 1\n"
        "LTV 1,200.00\n"
        "LTV:CAC 12.00:1 at a CAC of 100 (target 3:1): grow\n"
        "max allowable CAC 400.00 (LTV / 3)\n"
    )
    assert main(["formula", "--fee", "30", "--retention-rate", "0.8", "--discount-rate", "0.01", "--margin", "0.5"]) \
        == 0
    out = capsys.readouterr().out
    assert "1 / (1 + d - r)" in out and "= 30 × 1 / (1 + 0.01 - 0.8) × 0.5" in out
    assert out.endswith(f"LTV {0.5 * 30 / 0.21:,.2f}\n")


# --- the retention-rate form and discounting against hand computations ----------------------------


def test_retention_rate_is_an_expected_lifetime_of_one_over_one_minus_r(capsys):
    # $40 orders, 3 a period, 60 % margin, 75 % of customers kept each period: lifetime 1 / 0.25 = 4 periods.
    hand = 40 * 3 * 0.6 * 4  # 288
    answer = run_json(capsys, "--order-value", "40", "--purchases-per-period", "3", "--margin", "0.6",
                      "--retention-rate", "0.75")
    assert answer["ltv"] == pytest.approx(hand, rel=1e-12)
    # The same customer for a fixed 4 periods: the same value without discounting.
    fixed = run_json(capsys, "--order-value", "40", "--purchases-per-period", "3", "--margin", "0.6", "--periods", "4")
    assert fixed["ltv"] == pytest.approx(hand, rel=1e-12)
    assert lifetime_value(fee=10, retention_rate=0).ltv == 10  # nobody renews: one period


def test_discounting_counts_period_k_at_its_end_the_first_once(capsys):
    d, value = 0.01, 50 * 2
    hand = sum(value / (1 + d) ** k for k in range(1, 13))  # k = 1..12
    answer = run_json(capsys, "--order-value", "50", "--purchases-per-period", "2", "--periods", "12",
                      "--discount-rate", str(d))
    assert answer["ltv"] == pytest.approx(hand, rel=1e-12)
    assert answer["ltv"] == pytest.approx(value * discount_factors(12, d).sum(), rel=1e-12)  # the project's convention
    assert lifetime_value(fee=110, periods=1, discount_rate=0.1).ltv == pytest.approx(100.0, rel=1e-12)
    # A fractional lifetime: the last part-period pro rata, as the historical model's annuity.
    assert lifetime_value(fee=110, periods=1.5, discount_rate=0.1).ltv == pytest.approx(100 + 0.5 * 110 / 1.1**2,
                                                                                           rel=1e-12)


def test_retention_with_discounting_is_the_geometric_sum(capsys):
    r, d, value, margin = 0.9, 0.02, 30.0, 0.4
    hand = margin * value * sum(r ** (k - 1) / (1 + d) ** k for k in range(1, 5001))
    answer = run_json(capsys, "--fee", "30", "--margin", "0.4", "--retention-rate", str(r), "--discount-rate", str(d))
    assert answer["ltv"] == pytest.approx(hand, rel=1e-12)
    assert answer["ltv"] == pytest.approx(margin * value / (1 + d - r), rel=1e-12)  # the closed form


# --- bad input: one line on stderr, exit 2, nothing on stdout --------------------------------------

RETAIL = ["--order-value", "50", "--purchases-per-period", "2"]


@pytest.mark.parametrize(("args", "says"), [
    ([*RETAIL], "exactly one of --periods"),  # neither
    ([*RETAIL, "--periods", "12", "--retention-rate", "0.8"], "exactly one of --periods"),  # both
    (["--fee", "30", "--order-value", "50", "--periods", "12"], "--fee is a subscription's"),
    (["--fee", "30", "--purchases-per-period", "2", "--periods", "12"], "--fee is a subscription's"),
    (["--order-value", "50", "--periods", "12"], "--purchases-per-period is missing"),
    (["--purchases-per-period", "2", "--periods", "12"], "--order-value is missing"),
    (["--periods", "12"], "pass the value per period"),
    ([], "pass the value per period"),
    (["--order-value", "-50", "--purchases-per-period", "2", "--periods", "12"], "--order-value must be > 0"),
    (["--order-value", "50", "--purchases-per-period", "-2", "--periods", "12"], "--purchases-per-period must be > 0"),
    (["--order-value", "0", "--purchases-per-period", "2", "--periods", "12"], "--order-value must be > 0"),
    (["--fee", "-30", "--periods", "12"], "--fee must be > 0"),
    ([*RETAIL, "--periods", "0"], "--periods must be > 0"),
    ([*RETAIL, "--periods", "-3"], "--periods must be > 0"),
    ([*RETAIL, "--periods", str(MAX_PERIODS + 1)], "--periods must be at most 36,525"),
    ([*RETAIL, "--retention-rate", "1"], "--retention-rate must be in [0, 1)"),
    ([*RETAIL, "--retention-rate", "80"], "10% is 0.1"),
    ([*RETAIL, "--retention-rate", "-0.1"], "--retention-rate must be in [0, 1)"),
    ([*RETAIL, "--periods", "12", "--discount-rate", "1"], "--discount-rate must be in [0, 1)"),
    ([*RETAIL, "--periods", "12", "--discount-rate", "-0.01"], "--discount-rate must be in [0, 1)"),
    ([*RETAIL, "--periods", "12", "--margin", "0"], "--margin must be in (0, 1]"),
    ([*RETAIL, "--periods", "12", "--margin", "30"], "--margin must be in (0, 1]"),
    ([*RETAIL, "--periods", "12", "--cac", "0"], "--cac must be > 0"),
    ([*RETAIL, "--periods", "12", "--cac", "-100"], "--cac must be > 0"),
    ([*RETAIL, "--periods", "12", "--target-ratio", "3"], "--target-ratio applies to LTV:CAC; pass --cac"),
    ([*RETAIL, "--periods", "12", "--cac", "100", "--target-ratio", "0.5"], "--target-ratio must be >= 1"),
    (["--order-value", "nan", "--purchases-per-period", "2", "--periods", "12"], "--order-value must be a finite"),
    (["--order-value", "inf", "--purchases-per-period", "2", "--periods", "12"], "--order-value must be a finite"),
    (["--fee", "nan", "--periods", "12"], "--fee must be a finite"),
    ([*RETAIL, "--periods", "nan"], "--periods must be a finite"),
    ([*RETAIL, "--periods", "inf"], "--periods must be a finite"),
    ([*RETAIL, "--retention-rate", "nan"], "--retention-rate must be a finite"),
    ([*RETAIL, "--periods", "12", "--discount-rate", "nan"], "--discount-rate must be a finite"),
    ([*RETAIL, "--periods", "12", "--margin", "nan"], "--margin must be a finite"),
    ([*RETAIL, "--periods", "12", "--cac", "inf"], "--cac must be a finite"),
    ([*RETAIL, "--periods", "12", "--cac", "100", "--target-ratio", "nan"], "--target-ratio must be a finite"),
    (["--order-value", "1e308", "--purchases-per-period", "1e10", "--periods", "12"], "too large to compute"),
    (["--order-value", "fifty", "--purchases-per-period", "2", "--periods", "12"], "'--order-value'"),  # typer's own
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, says):
    assert main(["formula", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("clvmodel: error: "), captured.err
    assert says in captured.err, captured.err
    assert main(["formula", *args, "--json"]) == 2  # --json does not change the refusal
    assert capsys.readouterr().out == ""


def test_the_console_entry_exits_2_without_a_traceback():
    done = subprocess.run([sys.executable, "-c", "from clvmodel.cli import main; main()", "formula", "--fee", "30",
                           "--periods", "0"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "clvmodel: error: formula: --periods must be > 0, got 0; use e.g. --periods 12\n"


# --- the Python function ---------------------------------------------------------------------------


def test_the_function_the_cli_calls():
    result = lifetime_value(order_value=50, purchases_per_period=2, periods=12, margin=0.25)
    assert result.ltv == 300.0 and result.value_per_period == 100.0 and result.discounted_periods == 12.0
    assert result.as_dict() == {"ltv": 300.0}  # no CAC: only the LTV
    assert (result.ltv_cac, result.max_allowable_cac, result.verdict, result.target_ratio) == (None, None, None, None)
    with_cac = lifetime_value(fee=30, retention_rate=0.5, cac=25)  # 60 / 25 = 2.4
    assert with_cac.target_ratio == 3.0 and with_cac.expected_lifetime == 2.0 and with_cac.verdict == "hold"
    with pytest.raises(ClvError, match="exactly one of --periods"):
        lifetime_value(fee=30)
    with pytest.raises(ClvError, match="--fee must be a finite number, got 'thirty'"):
        lifetime_value(fee="thirty", periods=3)  # type: ignore[arg-type]
    with pytest.raises(ClvError, match="--periods must be a finite number, got True"):
        lifetime_value(fee=30, periods=True)


def test_an_overflowing_ratio_is_one_line_not_infinity_in_json(capsys: pytest.CaptureFixture) -> None:
    from clvmodel.cli import main

    assert main(["formula", "--fee", "1e300", "--periods", "10", "--cac", "1e-300", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "LTV:CAC overflows" in captured.err and len(captured.err.strip().splitlines()) == 1
