"""Training figures, returned as :class:`matplotlib.figure.Figure` (never shown, no pyplot state).

Figures are built with the object API so nothing global changes and nothing needs a display.

Value axes (CLV, spend, cumulative value) say their currency when the caller knows it
(``currency="USD"``, ``"$"``); the data carry none (an amount column is a plain number), so by default
they read "in the data's amount units" rather than guessing a "$".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import TightLayoutEngine
from matplotlib.ticker import FuncFormatter

__all__ = ["survival_projection", "cumulative_transactions", "holdout_by_frequency", "p_alive_histogram",
           "clv_histogram", "leaderboard_chart", "cohort_curves", "tornado"]


def _axes(width: float, height: float) -> tuple[Figure, Axes]:
    """A new figure of ``width`` × ``height`` inches and its one set of axes."""
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _tight_layout(fig: Figure) -> None:
    """Lay ``fig`` out as ``fig.tight_layout()`` does, without leaving a layout engine on it.

    ``Figure.tight_layout`` leaves a placeholder engine behind, and ``savefig`` draws a figure
    that has an engine once more before drawing it for real (so that an engine can lay it out;
    the placeholder lays out nothing): every PNG cost two full draws. The same engine with the
    same arguments, run here without being set on the figure, gives the same subplot
    parameters and one draw per save (the same PNG bytes).
    """
    TightLayoutEngine(pad=1.08, h_pad=None, w_pad=None, rect=None).execute(fig)


def _value_unit(currency: str = "") -> str:
    """The unit shown on a value axis: the currency when known, else a neutral one."""
    return currency or "in the data's amount units"


def _finish(fig: Figure, ax: Axes, xlabel: str, ylabel: str, *, legend: bool = True) -> Figure:
    """Label the axes, add the legend, and lay the figure out: the last steps of every one-axes chart."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend()
    _tight_layout(fig)
    return fig


def cumulative_transactions(
    actual: pd.Series, predicted: np.ndarray, *, calibration_period: float | None, unit: str, model: str = "BG/NBD"
) -> Figure:
    """Cumulative repeat transactions, actual vs the purchase model (Fader, Hardie & Lee 2005, fig. 2)."""
    fig, ax = _axes(8, 4.5)
    ax.plot(actual.index, actual.cumsum().to_numpy(), label="actual", color="black")
    ax.plot(actual.index, predicted, label=model, color="tab:blue", linestyle="--")
    if calibration_period is not None:
        ax.axvline(calibration_period, color="grey", linestyle=":", label="calibration end")
    return _finish(fig, ax, f"{unit}s since the first purchase in the data", "cumulative repeat transactions")


def holdout_by_frequency(table: pd.DataFrame) -> Figure:
    """Mean holdout purchases by calibration frequency, actual vs each model (paper's fig. 3)."""
    fig, ax = _axes(8, 4.5)
    models = [c for c in table.columns if c not in {"frequency", "customers"}]
    for column in models:
        style = {"color": "black"} if column == "actual" else {"linestyle": "--", "marker": "o"}
        ax.plot(table["frequency"], table[column], label=column, **style)
    return _finish(fig, ax, "repeat purchases in the calibration period", "mean purchases in the holdout period")


def p_alive_histogram(p_alive: np.ndarray) -> Figure:
    """Customers by P(alive), in twenty bins of 0.05."""
    fig, ax = _axes(6, 4)
    ax.hist(p_alive, bins=np.linspace(0, 1, 21), color="tab:blue", edgecolor="white")
    return _finish(fig, ax, "P(alive)", "customers", legend=False)


def clv_histogram(clv: np.ndarray, *, horizon: int, unit: str, currency: str = "") -> Figure:
    """Customers by predicted CLV on a log scale (customers with none left out, and counted in the title).

    The value axis runs from the lowest bin to the highest, so it starts at the data (a cent, or
    the least CLV when that is higher), not at the autoscaled margin; ticks are plain amounts
    (``1,000``, not ``10^3``).
    """
    fig, ax = _axes(6, 4)
    positive = clv[clv > 0]
    bins: np.ndarray | int = 20
    below = 0
    if len(positive):
        top = positive.max()
        # From the 1st percentile up: a few near-zero CLVs (a customer almost surely gone) would
        # otherwise stretch the axis decades below the data; they are counted in the first bar.
        low = float(np.percentile(positive, 1))
        # One customer, or every CLV equal: a range of its own around the value, since log-spaced
        # bins need low < top.
        bins = np.geomspace(low, top, 40) if low < top else np.geomspace(top / 2, top * 2, 5)
        below = int(np.sum(positive < bins[0]))
        positive = np.maximum(positive, bins[0])
    ax.hist(positive, bins=bins, color="tab:green", edgecolor="white")
    if len(positive):
        ax.set_xscale("log")
        ax.set_xlim(bins[0], bins[-1])  # type: ignore[index]
        ax.xaxis.set_major_formatter(FuncFormatter(_money))
    notes = [f"{int(np.sum(~(clv > 0))):,} customers with no positive CLV not shown"] if (~(clv > 0)).any() else []
    if below:
        notes.append(f"the first bar includes the {below:,} below {float(bins[0]):,.3g}")  # type: ignore[index]
    if notes:
        ax.set_title("; ".join(notes), fontsize=9)
    return _finish(fig, ax, f"predicted CLV over {horizon} {unit}s ({_value_unit(currency)})", "customers",
                   legend=False)


def leaderboard_chart(board: pd.DataFrame, selection: dict | None = None, *, currency: str = "") -> Figure:
    """Holdout % error and Spearman rank correlation per model, for purchases and spend; with
    ``selection`` (:func:`clvmodel.evaluate.select_model`'s dict) a third panel: the selection
    metric per candidate, the chosen model's bar dark, those left out for their total error hatched,
    and the choice in the title."""
    values = (selection or {}).get("values") or {}
    fig = Figure(figsize=(13 if values else 9, 4))
    axes = fig.subplots(1, 3 if values else 2)
    for ax, column, title in ((axes[0], "pct_error", "total holdout error, %"), (axes[1], "spearman", "Spearman rank correlation")):
        wide = board.pivot(index="model", columns="target", values=column).reindex(board["model"].unique())
        positions = np.arange(len(wide))
        for offset, target in ((-0.2, "purchases"), (0.2, "spend")):
            ax.bar(positions + offset, wide[target].to_numpy(), width=0.4, label=target)
        ax.set_xticks(positions, wide.index, rotation=20)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(title)
    axes[0].legend()
    if values:
        ax, chosen, excluded = axes[2], selection.get("chosen"), selection.get("excluded") or {}  # type: ignore[union-attr]
        names = list(values)
        bars = ax.bar(np.arange(len(names)), [values[m] for m in names],
                      color=["tab:green" if m == chosen else "lightgrey" for m in names], edgecolor="black")
        for bar, name in zip(bars, names):
            if name in excluded:
                bar.set_hatch("//")
        ax.bar_label(bars, labels=[f"{values[m]:,.4g}" for m in names], fontsize=8)
        ax.set_xticks(np.arange(len(names)), names, rotation=20)
        metric = str(selection.get("metric", ""))  # type: ignore[union-attr]
        ax.set_title(f"selection: {selection.get('rule', metric)}", fontsize=9)  # type: ignore[union-attr]
        money = metric.startswith("spend_") and metric.split("_", 1)[1] in {"mae", "rmse"}
        ax.set_ylabel(f"{metric} ({_value_unit(currency)})" if money else metric)
        if money:
            ax.yaxis.set_major_formatter(FuncFormatter(_money))
    if selection and selection.get("chosen"):
        fig.suptitle(f"predicted_clv from {selection['chosen']}", fontsize=11)
    _tight_layout(fig)
    return fig


def survival_projection(projection: pd.DataFrame, fitted_periods: int, period: str) -> Figure:
    """Customers still active, actual vs the sBG projection (Fader & Hardie 2007, figure 2)."""
    fig, ax = _axes(7, 4)
    ax.plot(projection["period"], projection["actual"], "o-", color="black", label="actual")
    ax.plot(projection["period"], projection["expected"], "--", color="tab:blue", label="sBG")
    ax.axvline(fitted_periods, color="grey", linestyle=":", label="end of fit")
    return _finish(fig, ax, f"{period}s since acquisition", "customers still active")


def _money(value: float, _position: object = None) -> str:
    """A value-axis tick: thousands separated, cents only when there are any (``1,250``, ``12.50``);
    below a cent, two significant digits (``0.0012``)."""
    if value and abs(value) < 0.01:  # a sub-cent tick on a log axis: not "0.00"
        return f"{value:.2g}"
    return f"{value:,.2f}".removesuffix(".00")


def cohort_curves(observed: pd.DataFrame, expected: pd.DataFrame, *, unit: str, currency: str = "",
                  model: str = "model") -> Figure:
    """Mean cumulative value per acquired customer by periods since acquisition, observed vs the model.

    One colour per channel: the observed curve solid (gaps where no customer was observed that
    long), the model's dashed; ``observed`` and ``expected`` as
    :func:`clvmodel.cohorts.observed_cohort_curves` and :func:`~clvmodel.cohorts.expected_cohort_curves`
    return them. ``currency`` (``"$"``, ``"EUR"``) labels the value axis.
    """
    fig, ax = _axes(8, 4.5)
    names = list(dict.fromkeys([*observed["channel"], *expected["channel"]]))
    colours = [f"C{i % 10}" for i in range(len(names))]
    for name, colour in zip(names, colours):
        own = observed[observed["channel"] == name]
        if len(own):
            ax.plot(own["period"], own["cumulative_value"], color=colour, label=f"{name}: observed")
        own = expected[expected["channel"] == name]
        if len(own):
            ax.plot(own["period"], own["cumulative_value"], color=colour, linestyle="--", label=f"{name}: {model}")
    ax.yaxis.set_major_formatter(FuncFormatter(_money))
    return _finish(fig, ax, f"{unit}s since acquisition",
                   f"mean cumulative value per acquired customer ({_value_unit(currency)})")


def tornado(panels: dict[str, pd.Series], *, title: str = "") -> Figure:
    """Levers ranked by impact: one horizontal bar per lever, largest at the top (a tornado chart).

    ``panels`` maps a panel title to a Series ``lever label -> % change``; each panel is sorted by
    the absolute change, labelled with the value, with a line at 0.
    """
    fig = Figure(figsize=(8, 1.2 + 0.5 * max((len(s) for s in panels.values()), default=1) * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (name, changes) in zip(axes, panels.items()):
        ordered = changes.reindex(changes.abs().sort_values().index)
        positions = np.arange(len(ordered))
        colours = ["tab:green" if v >= 0 else "tab:red" for v in ordered.to_numpy()]
        ax.barh(positions, ordered.to_numpy(), color=colours)
        ax.set_yticks(positions, list(ordered.index))
        ax.axvline(0, color="black", linewidth=0.8)
        for y, value in zip(positions, ordered.to_numpy()):
            ax.annotate(f"{value:+.1f}%", (value, y), xytext=(4 if value >= 0 else -4, 0), textcoords="offset points",
                        ha="left" if value >= 0 else "right", va="center", fontsize=8)
        low, high = min(0.0, float(ordered.min())), max(0.0, float(ordered.max()))
        pad = 0.2 * (high - low or 1.0)
        ax.set_xlim(low - (pad if low < 0 else 0), high + pad)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("% change of profit")
    if title:
        fig.suptitle(title, fontsize=11)
    _tight_layout(fig)
    return fig
