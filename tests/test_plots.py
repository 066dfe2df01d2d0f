"""The training figures draw the numbers they are given (checked on the artists, not on pixels)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from clvmodel import plots


def _bar_heights(figure: Figure) -> np.ndarray:
    return np.array([patch.get_height() for patch in figure.axes[0].patches])


def test_cumulative_transactions_draws_the_running_total_and_the_forecast() -> None:
    actual = pd.Series([3, 0, 5, 2], index=pd.RangeIndex(1, 5, name="period"))
    predicted = np.array([2.5, 4.0, 8.5, 10.0])
    figure = plots.cumulative_transactions(actual, predicted, calibration_period=2.0, unit="week", model="bgnbd")
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    np.testing.assert_array_equal(lines["actual"].get_ydata(), [3, 3, 8, 10])  # cumulative sum
    np.testing.assert_array_equal(lines["bgnbd"].get_ydata(), predicted)
    np.testing.assert_array_equal(lines["calibration end"].get_xdata(), [2.0, 2.0])
    assert figure.axes[0].get_xlabel() == "weeks since the first purchase in the data"


def test_no_calibration_line_without_a_split() -> None:
    figure = plots.cumulative_transactions(pd.Series([1, 2]), np.array([1.0, 2.0]), calibration_period=None, unit="day")
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["actual", "BG/NBD"]


def test_p_alive_histogram_counts_twenty_bins_of_width_005() -> None:
    values = np.array([0.0, 0.01, 0.049, 0.05, 0.5, 0.99, 1.0, 1.0])
    heights = _bar_heights(plots.p_alive_histogram(values))
    assert len(heights) == 20
    # numpy's bins are half-open except the last, which holds 1.0.
    expected = np.zeros(20)
    expected[[0, 1, 10, 19]] = [3, 1, 1, 3]
    np.testing.assert_array_equal(heights, expected)


def test_clv_histogram_counts_only_positive_values_on_log_bins() -> None:
    values = np.array([-5.0, 0.0, 0.5, 1.0, 10.0, 10.0, 100.0, 1000.0])
    figure = plots.clv_histogram(values, horizon=12, unit="week")
    heights = _bar_heights(figure)
    assert heights.sum() == 6  # the negative and the zero CLV are not on a log axis
    assert len(heights) == 39
    assert figure.axes[0].get_xscale() == "log"
    assert figure.axes[0].get_xlabel() == "predicted CLV over 12 weeks (in the data's amount units)"
    assert figure.axes[0].get_title() == "2 customers with no positive CLV not shown; the first bar includes the 1 below 0.525"


def test_clv_histogram_axis_starts_at_the_data_and_names_the_currency() -> None:
    # CLVs from 500 up, and one customer nearly gone at 0.0001: the axis starts at the data's 1st
    # percentile (not at 0, nor decades below at the outlier), which is counted in the first bar.
    values = np.concatenate([np.geomspace(500.0, 5000.0, 199), [1e-4]])
    figure = plots.clv_histogram(values, horizon=3, unit="year", currency="USD")
    ax = figure.axes[0]
    low = np.percentile(values, 1)
    assert ax.get_xlim()[0] == pytest.approx(low) and low > 400
    assert ax.get_xlim()[1] == pytest.approx(5000.0)
    assert _bar_heights(figure).sum() == 200
    assert ax.get_xlabel() == "predicted CLV over 3 years (USD)"
    assert ax.get_title() == f"the first bar includes the 2 below {low:,.3g}"
    assert ax.xaxis.get_major_formatter()(1000.0, 0) == "1,000"  # amounts, not 10^3


def test_clv_histogram_with_no_positive_value_is_an_empty_linear_plot() -> None:
    figure = plots.clv_histogram(np.zeros(5), horizon=3, unit="day")
    assert _bar_heights(figure).sum() == 0
    assert figure.axes[0].get_xscale() == "linear"


@pytest.mark.parametrize("values", [[42.0], [7.5, 7.5, 7.5], [0.001, 0.004]])
def test_clv_histogram_of_one_value_or_tiny_values_counts_every_positive_clv(values: list[float]) -> None:
    # One customer (or equal / sub-cent CLVs) once made log bins run backwards: a traceback in train.
    figure = plots.clv_histogram(np.array(values), horizon=3, unit="week")
    assert _bar_heights(figure).sum() == len(values)
    assert figure.axes[0].get_xscale() == "log"


def test_holdout_by_frequency_draws_each_model_column() -> None:
    table = pd.DataFrame(
        {"frequency": [0, 1, 2], "customers": [10, 5, 2], "actual": [0.2, 0.9, 1.5], "bgnbd": [0.25, 0.8, 1.6]}
    )
    lines = {line.get_label(): line for line in plots.holdout_by_frequency(table).axes[0].get_lines()}
    assert set(lines) == {"actual", "bgnbd"}  # "customers" is a count, not a model
    np.testing.assert_array_equal(lines["bgnbd"].get_ydata(), [0.25, 0.8, 1.6])


def test_leaderboard_chart_bars_in_model_order() -> None:
    board = pd.DataFrame(
        {
            "model": ["bgnbd", "bgnbd", "historical", "historical"],
            "target": ["purchases", "spend", "purchases", "spend"],
            "pct_error": [1.5, -2.0, 40.0, 35.0],
            "spearman": [0.6, 0.5, 0.55, 0.45],
        }
    )
    figure = plots.leaderboard_chart(board)
    errors = [p.get_height() for p in figure.axes[0].patches]
    assert errors == [1.5, 40.0, -2.0, 35.0]  # purchases bars (both models), then spend bars
    assert [t.get_text() for t in figure.axes[1].get_xticklabels()] == ["bgnbd", "historical"]
    assert len(figure.axes) == 2 and figure._suptitle is None  # no selection given: no third panel


def test_leaderboard_chart_shows_the_selection_metric_and_the_choice() -> None:
    board = pd.DataFrame(
        {
            "model": ["bgnbd", "bgnbd", "pareto_nbd", "pareto_nbd", "mbgnbd", "mbgnbd"],
            "target": ["purchases", "spend"] * 3,
            "pct_error": [-14.3, -17.3, -12.9, -15.8, -19.1, -21.9],
            "spearman": [0.44, 0.42, 0.45, 0.44, 0.45, 0.43],
        }
    )
    selection = {"chosen": "pareto_nbd", "rule": "holdout spend_mae (lower is better)", "metric": "spend_mae",
                 "values": {"bgnbd": 32.675, "pareto_nbd": 31.985, "mbgnbd": 31.841}, "excluded": {"mbgnbd": -19.1}}
    figure = plots.leaderboard_chart(board, selection, currency="EUR")
    ax = figure.axes[2]
    assert ax.get_title() == "selection: holdout spend_mae (lower is better)"
    assert ax.get_ylabel() == "spend_mae (EUR)"
    assert [p.get_height() for p in ax.patches] == [32.675, 31.985, 31.841]
    assert [p.get_hatch() for p in ax.patches] == [None, None, "//"]  # left out for its total error
    colours = [p.get_facecolor() for p in ax.patches]
    assert colours[1] != colours[0] == colours[2]  # the chosen one stands out
    assert [t.get_text() for t in ax.texts] == ["32.67", "31.98", "31.84"]
    assert figure._suptitle.get_text() == "predicted_clv from pareto_nbd"
    spearman = plots.leaderboard_chart(board, {**selection, "metric": "purchases_spearman"})
    assert spearman.axes[2].get_ylabel() == "purchases_spearman"  # not a value: no currency


def test_survival_projection_draws_actual_and_expected() -> None:
    projection = pd.DataFrame({"period": [0, 1, 2], "actual": [1000, 631, 468], "expected": [1000, 640.0, 470.0]})
    lines = {line.get_label(): line for line in plots.survival_projection(projection, 2, "year").axes[0].get_lines()}
    np.testing.assert_array_equal(lines["actual"].get_ydata(), [1000, 631, 468])
    np.testing.assert_array_equal(lines["sBG"].get_ydata(), [1000, 640.0, 470.0])


@pytest.mark.parametrize("name", ["p_alive_histogram", "clv_histogram"])
def test_figures_leave_pyplot_alone(name: str) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    figure = getattr(plots, name)(np.linspace(0.01, 1, 50), **({} if name == "p_alive_histogram" else {"horizon": 1, "unit": "day"}))
    assert isinstance(figure, Figure)
    assert plt.get_fignums() == before  # object API only: nothing registered with pyplot


def _every_figure() -> dict[str, Figure]:
    """One figure of each kind, on small fixed data (the three layouts: one axes, panels, rows)."""
    board = pd.DataFrame({"model": ["bgnbd", "bgnbd"], "target": ["purchases", "spend"],
                          "pct_error": [1.5, -2.0], "spearman": [0.6, 0.5]})
    curves = pd.DataFrame({"channel": ["web", "web"], "period": [1, 2], "cumulative_value": [10.0, 15.0]})
    return {
        "cumulative_transactions": plots.cumulative_transactions(
            pd.Series([3, 0, 5, 2]), np.array([2.5, 4.0, 8.5, 10.0]), calibration_period=2.0, unit="week"),
        "p_alive_histogram": plots.p_alive_histogram(np.linspace(0, 1, 50)),
        "clv_histogram": plots.clv_histogram(np.geomspace(0.01, 500, 60), horizon=12, unit="week"),
        "leaderboard_chart": plots.leaderboard_chart(
            board, {"chosen": "bgnbd", "rule": "configured", "metric": "spend_mae", "values": {"bgnbd": 3.2}}),
        "cohort_curves": plots.cohort_curves(curves, curves, unit="week"),
        "tornado": plots.tornado({"profit": pd.Series({"retention +1 pt": 4.0, "discount": -2.5})}),
    }


def test_figures_are_drawn_once_per_save(monkeypatch: pytest.MonkeyPatch) -> None:
    # Figure.tight_layout leaves a placeholder layout engine, and savefig then draws the whole
    # figure a second time first: the figures are laid out without leaving one.
    draws = []
    original = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: draws.append(self) or original(self, renderer))
    for name, figure in _every_figure().items():
        assert figure.get_layout_engine() is None, name
        draws.clear()
        figure.savefig(io.BytesIO(), format="png", dpi=80)
        assert len(draws) == 1, name


def test_figures_are_laid_out_as_tight_layout_lays_them_out(monkeypatch: pytest.MonkeyPatch) -> None:
    # Oracle: the code path before, Figure.tight_layout(); same subplot parameters, same PNG bytes.
    def png(figure: Figure) -> bytes:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    ours = _every_figure()
    monkeypatch.setattr(plots, "_tight_layout", lambda figure: figure.tight_layout())
    before = _every_figure()
    for name, figure in ours.items():
        old = before[name]
        assert old.get_layout_engine() is not None  # the oracle is the old path indeed
        assert vars(figure.subplotpars) == vars(old.subplotpars), name
        assert png(figure) == png(old), name
