"""Training figures, returned as :class:`matplotlib.figure.Figure` (never shown, no pyplot state).

Figures are built with the object API so nothing global changes and nothing needs a display.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["survival_projection", "cumulative_transactions", "holdout_by_frequency", "p_alive_histogram", "clv_histogram", "leaderboard_chart"]


def cumulative_transactions(
    actual: pd.Series, predicted: np.ndarray, *, calibration_period: float | None, unit: str, model: str = "BG/NBD"
) -> Figure:
    """Cumulative repeat transactions, actual vs the purchase model (Fader, Hardie & Lee 2005, fig. 2)."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    ax.plot(actual.index, actual.cumsum().to_numpy(), label="actual", color="black")
    ax.plot(actual.index, predicted, label=model, color="tab:blue", linestyle="--")
    if calibration_period is not None:
        ax.axvline(calibration_period, color="grey", linestyle=":", label="calibration end")
    ax.set_xlabel(f"{unit}s since the first purchase in the data")
    ax.set_ylabel("cumulative repeat transactions")
    ax.legend()
    fig.tight_layout()
    return fig


def holdout_by_frequency(table: pd.DataFrame) -> Figure:
    """Mean holdout purchases by calibration frequency, actual vs each model (paper's fig. 3)."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    models = [c for c in table.columns if c not in {"frequency", "customers"}]
    for column in models:
        style = {"color": "black"} if column == "actual" else {"linestyle": "--", "marker": "o"}
        ax.plot(table["frequency"], table[column], label=column, **style)
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout period")
    ax.legend()
    fig.tight_layout()
    return fig


def p_alive_histogram(p_alive: np.ndarray) -> Figure:
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.hist(p_alive, bins=np.linspace(0, 1, 21), color="tab:blue", edgecolor="white")
    ax.set_xlabel("P(alive)")
    ax.set_ylabel("customers")
    fig.tight_layout()
    return fig


def clv_histogram(clv: np.ndarray, *, horizon: int, unit: str) -> Figure:
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    positive = clv[clv > 0]
    bins: np.ndarray | int = 20
    if len(positive):
        top = positive.max()
        # Bins from a cent (or the least CLV) up, unless the CLVs are all below a cent.
        low = max(positive.min(), min(1e-2, top / 100))
        # One customer, or every CLV equal: a range of its own around the value, since log-spaced
        # bins need low < top.
        bins = np.geomspace(low, top, 40) if low < top else np.geomspace(top / 2, top * 2, 5)
    ax.hist(positive, bins=bins, color="tab:green", edgecolor="white")
    if len(positive):
        ax.set_xscale("log")
    ax.set_xlabel(f"predicted CLV over {horizon} {unit}s")
    ax.set_ylabel("customers")
    fig.tight_layout()
    return fig


def leaderboard_chart(board: pd.DataFrame) -> Figure:
    """Holdout % error and Spearman rank correlation per model, for purchases and spend."""
    fig = Figure(figsize=(9, 4))
    axes = fig.subplots(1, 2)
    for ax, column, title in ((axes[0], "pct_error", "total holdout error, %"), (axes[1], "spearman", "Spearman rank correlation")):
        wide = board.pivot(index="model", columns="target", values=column).reindex(board["model"].unique())
        positions = np.arange(len(wide))
        for offset, target in ((-0.2, "purchases"), (0.2, "spend")):
            ax.bar(positions + offset, wide[target].to_numpy(), width=0.4, label=target)
        ax.set_xticks(positions, wide.index, rotation=20)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(title)
    axes[0].legend()
    fig.tight_layout()
    return fig


def survival_projection(projection: pd.DataFrame, fitted_periods: int, period: str) -> Figure:
    """Customers still active, actual vs the sBG projection (Fader & Hardie 2007, figure 2)."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(projection["period"], projection["actual"], "o-", color="black", label="actual")
    ax.plot(projection["period"], projection["expected"], "--", color="tab:blue", label="sBG")
    ax.axvline(fitted_periods, color="grey", linestyle=":", label="end of fit")
    ax.set_xlabel(f"{period}s since acquisition")
    ax.set_ylabel("customers still active")
    ax.legend()
    fig.tight_layout()
    return fig
