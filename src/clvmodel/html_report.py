"""A training run as one self-contained HTML page a marketer can read (issue 15).

:func:`render_train` takes a :class:`clvmodel.train.TrainResult` and returns the page as a string;
it writes nothing. The page needs nothing else: every figure is embedded as a base64 PNG
``data:`` URI, the style sheet is inline, and there is no script and no link to another resource.
Every text that comes from the data or the config (channel and model names, the selection's
reason) is escaped with :func:`html.escape`.

Each number that is also a metric of the MLflow run carries its metric's name and exact value
(``<td data-metric="holdout.pareto_nbd.spend_mae" data-value="29.4512...">29.45</td>``), so a
test, or a reader's own script, can check the page against the run.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["render_train", "render_page", "table", "figure_html", "cell", "escape", "FIGURE_NOTES",
           "channel_metric_labels"]

#: MLflow metric names allow letters, digits, ``_ - . /`` and spaces; a channel label may hold anything.
_METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

#: One sentence per figure on how to read it; a figure not named here gets a plain caption.
FIGURE_NOTES = {
    "cumulative_repeat_transactions.png": (
        "Repeat purchases added up over time, actual (solid) against the model (dashed): after the dotted "
        "calibration end the model forecasts what it never saw, so the closer the lines stay there, the better."),
    "p_alive.png": (
        "How many customers the model thinks are still active (P(alive) near 1) or gone (near 0): "
        "a large bar near 0 means many customers have likely stopped buying."),
    "holdout_by_frequency.png": (
        "Customers grouped by how often they bought in the calibration period: each model's forecast of their "
        "holdout purchases against what they actually bought (black); the model whose line follows black forecasts best."),
    "leaderboard.png": (
        "Each model's holdout error (left: total % error, closer to 0 is better), how well it ranks customers "
        "(middle: Spearman, closer to 1 is better) and, when the model was chosen by a metric, that metric (right)."),
    "cohort_curves.png": (
        "Average value per acquired customer, added up since acquisition, per channel: the solid line is observed, "
        "the dashed one the model; a channel whose curve rises higher brings more valuable customers."),
    "clv_distribution.png": (
        "How predicted customer lifetime value is spread (log scale): most customers are worth little and a few "
        "are worth a lot; the long right tail is where the value is."),
}

_STYLE = """
body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
img{max-width:100%;height:auto;display:block}
figure{margin:1em 0 2em}
figcaption{color:#444;max-width:60em}
.note{color:#555}
.wide{overflow-x:auto}
"""

#: The leaderboard's columns that are metrics of the run (``holdout.<model>.<target>_<metric>``).
_BOARD_METRICS = ("total_actual", "total_predicted", "pct_error", "rmse", "mae", "spearman", "top20_share")
#: The acquisition table's columns that are metrics of the run (``channel.<label>.<column>``).
_CHANNEL_METRICS = ("acquisition_value", "acquisition_value_lower", "acquisition_value_upper",
                    "remaining_clv_mean", "expected_repeat_purchases", "first_order_value")


def channel_metric_labels(channels: list[Any]) -> list[str]:
    """Each channel's name in its MLflow metric names (``channel.<label>.acquisition_value``).

    MLflow metric names allow letters, digits and ``_ . -`` here: anything else becomes ``_``, cut at
    100 characters; a label already taken (``a b`` and ``a_b``) gets a suffix.
    """
    labels: list[str] = []
    for channel in channels:
        label = base = _METRIC_UNSAFE.sub("_", str(channel))[:100]
        while label in labels:
            label = f"{base}_{len(labels)}"
        labels.append(label)
    return labels


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return "—"
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{value:,.0f}"
    return f"{float(value):,.{digits}f}"


def _cell(value: Any, metric: str | None = None, digits: int = 2) -> str:
    """A table cell; with ``metric``, the metric's name and exact value as attributes."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        shown = _number(value, digits)
        if metric is not None and not pd.isna(value):
            return f'<td data-metric="{_e(metric)}" data-value="{float(value)!r}">{_e(shown)}</td>'
        return f"<td>{_e(shown)}</td>"
    return f"<td>{_e('' if value is None or (isinstance(value, float) and pd.isna(value)) else value)}</td>"


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _leaderboard(board: pd.DataFrame) -> str:
    columns = [c for c in ("model", "target", *_BOARD_METRICS, "status") if c in board.columns]
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    rows = []
    for record in board.to_dict("records"):
        cells = []
        for column in columns:
            value = record.get(column)
            metric = (f"holdout.{record['model']}.{record['target']}_{column}"
                      if column in _BOARD_METRICS and record.get("target") else None)
            cells.append(_cell(value, metric, digits=4 if column in ("spearman", "top20_share") else 2))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="leaderboard"><tr>{head}</tr>{"".join(rows)}</table>'


def _selection(selection: dict[str, Any]) -> str:
    chosen = selection.get("chosen")
    parts = [f"<p>Predicted CLV comes from <strong>{_e(chosen or 'the historical formula')}</strong> "
             f"(rule: {_e(selection.get('rule', ''))}).</p>",
             f'<p id="reason">{_e(selection.get("reason", ""))}</p>']
    failed = selection.get("not_converged") or {}
    if failed:
        items = "".join(f"<li>{_e(name)}: {_e(reason)}</li>" for name, reason in failed.items())
        parts.append(f"<p>Models that could not be fitted:</p><ul>{items}</ul>")
    return "".join(parts)


def _segments(scores: pd.DataFrame, weights: np.ndarray | None) -> str:
    if "segment" not in scores.columns:
        return "<p>No segments.</p>"
    ok = (scores["status"] == "ok").to_numpy() if "status" in scores.columns else np.ones(len(scores), bool)
    per_row = weights if weights is not None else np.ones(len(scores))
    clv = np.nan_to_num(scores["predicted_clv"].to_numpy(dtype=float)) * per_row
    frame = pd.DataFrame({"segment": scores["segment"].astype(str).to_numpy()[ok], "customers": per_row[ok],
                          "clv": clv[ok]})
    grouped = frame.groupby("segment", sort=False).sum()
    total_customers, total_clv = float(grouped["customers"].sum()), float(grouped["clv"].sum())
    rows = [f'<tr>{_cell(name)}{_cell(float(g.customers), digits=0)}'
            f'{_cell(100 * g.customers / total_customers if total_customers else float("nan"), digits=1)}'
            f'{_cell(float(g.clv))}{_cell(100 * g.clv / total_clv if total_clv else float("nan"), digits=1)}</tr>'
            for name, g in grouped.sort_values("clv", ascending=False).iterrows()]
    totals = (f"<tr><th>all</th>{_cell(total_customers, 'customers_scored', digits=0)}{_cell(100.0, digits=1)}"
              f"{_cell(total_clv, 'predicted_clv.total')}{_cell(100.0, digits=1)}</tr>")
    return ('<table id="segments"><tr><th>segment</th><th>customers</th><th>% of customers</th>'
            f'<th>predicted CLV</th><th>% of CLV</th></tr>{"".join(rows)}{totals}</table>')


def _acquisition(table: pd.DataFrame) -> str:
    labels = channel_metric_labels(list(table["channel"]))
    columns = list(table.columns)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    rows = []
    for label, record in zip(labels, table.to_dict("records")):
        cells = [_cell(record[c], f"channel.{label}.{c}" if c in _CHANNEL_METRICS else None) for c in columns]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="wide"><table id="acquisition"><tr>{head}</tr>{"".join(rows)}</table></div>'


def escape(value: Any) -> str:
    """``value`` as text safe in HTML content and in a quoted attribute."""
    return _e(value)


def cell(value: Any, metric: str | None = None, digits: int = 2) -> str:
    """A ``<td>``: numbers formatted; with ``metric``, its name and exact value as attributes."""
    return _cell(value, metric, digits)


def figure_html(name: str, figure: Any, note: str) -> str:
    """A matplotlib figure as an embedded PNG with ``note`` (how to read it) as its caption."""
    return (f'<figure><img src="{_png(figure)}" alt="{_e(name)}" data-figure="{_e(name)}">'
            f"<figcaption>{_e(note)}</figcaption></figure>")


def table(frame: pd.DataFrame, table_id: str, metrics: dict[str, str] | None = None,
          digits: dict[str, int] | None = None) -> str:
    """``frame`` as a table; ``metrics`` maps a column to a metric name pattern with ``{row}`` (the row's
    first column)."""
    columns = list(frame.columns)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    rows = []
    for record in frame.to_dict("records"):
        first = record[columns[0]]
        cells = [_cell(record[c], (metrics or {}).get(c, "").format(row=first) or None, (digits or {}).get(c, 2))
                 for c in columns]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="wide"><table id="{_e(table_id)}"><tr>{head}</tr>{"".join(rows)}</table></div>'


def render_page(title: str, parts: list[str]) -> str:
    """A whole page: ``title`` (escaped here) and ``parts`` (already HTML) in order."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>\n<h1>{_e(title)}</h1>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def render_train(result: Any) -> str:
    """The page of a training run (a :class:`clvmodel.train.TrainResult`); see the module docstring."""
    config, model = result.config, result.model
    title = f"clvmodel training report: {config.name}"
    summary = result.rfm.summary
    weights = summary["weights"].to_numpy(dtype=float) if "weights" in summary.columns else None
    parts = [f"<p class=\"note\">Time unit: {_e(config.time_unit)}; CLV over {_e(config.clv_used()['horizon'])} "
             f"{_e(config.time_unit)}s; model directory {_e(result.model_dir)}.</p>"]
    parts.append("<h2>Which model, and why</h2>" + _selection(model.selection or {}))
    if result.leaderboard is not None:
        parts.append("<h2>Leaderboard (holdout period)</h2>"
                     "<p>Each model's forecast of the holdout period against what customers actually did: "
                     "pct_error is the total's error in %, mae and rmse the miss per customer, spearman how well "
                     "it ranks customers (1 = perfectly).</p>" + _leaderboard(result.leaderboard))
    parts.append("<h2>Segments</h2><p>Customers and their share of the predicted CLV by segment.</p>"
                 + _segments(result.scores, weights))
    acquisition = result.tables.get("acquisition.csv")
    if acquisition is not None:
        parts.append("<h2>Acquisition value by channel</h2><p>What a newly acquired customer of each channel is "
                     "expected to be worth, beside the remaining CLV of the channel's existing customers.</p>"
                     + _acquisition(acquisition))
    figures = dict(result.figures)
    if figures:
        parts.append("<h2>Figures</h2>")
        for name, figure in figures.items():
            parts.append(figure_html(name, figure, FIGURE_NOTES.get(name, name)))
    if result.warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in result.warnings)
        parts.append(f"<h2>Warnings</h2><ul>{items}</ul>")
    return render_page(title, parts)
