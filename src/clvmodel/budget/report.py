"""Rendering a :class:`~clvmodel.budget.run.BudgetResult`: the text report and the LTV:CAC chart."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from clvmodel.budget.cac_config import UNKNOWN
from clvmodel.budget.new_customers import REMAINING_BASIS
from clvmodel.budget.run import BudgetResult


def _money(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"


def _ratio(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.2f}:1"


def _plain(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:,.0f}"


def _share(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.1%}"


def _basis_lines(result: BudgetResult) -> list[str]:
    """Which value each column rests on, in words (the header of the channel table)."""
    values = result.new_values
    if values is None:
        return [
            f"Value: {result.value_basis}.",
            "  mean_clv (the scores' predicted_clv), ltv_cac, max_allowable_cac, payback_periods and the allocation",
            "  rest on it. A model trained with a channel (--model) values a new customer instead.",
        ]
    return [
        f"Value: {result.value_basis}.",
        f"  acquisition_value (margin {values.margin:.0%}, {values.level:.0%} interval), ltv_cac, max_allowable_cac,",
        "  payback_periods (the first order is period 0) and the allocation rest on it;",
        f"  mean_clv_margin (margin x mean_clv) is the {REMAINING_BASIS},",
        "  on the same basis, for comparison.",
    ]


def format_report(result: BudgetResult) -> str:
    """A plain-text report: channels (with what their values rest on), allocation, segments, warnings."""
    ch = result.channels.copy()
    margin_note = "" if result.margin == 1.0 else f", margin {result.margin:.0%} applied"
    lines = [f"LTV:CAC by channel (target {result.target_ratio:g}:1{margin_note})"]
    lines.extend(_basis_lines(result))
    cols: dict[str, Any] = {"channel": str, "customers": _plain}
    if result.new_values is None:
        cols["mean_clv"] = _money
    else:
        ch["interval"] = [
            "-" if not (np.isfinite(lo) and np.isfinite(hi)) else f"{_money(lo)} to {_money(hi)}"
            for lo, hi in zip(ch["acquisition_value_lower"], ch["acquisition_value_upper"])
        ]
        cols.update({"mean_clv_margin": _money, "acquisition_value": _money, "interval": str})
    cols.update({
        "cac": _money, "ltv_cac": _ratio, "max_allowable_cac": _money, "payback_periods": _plain,
        "verdict": str,
    })
    lines.append(ch[list(cols)].to_string(index=False, formatters=cols, na_rep="-"))
    lines.append("")
    s = result.summary()
    per_customer = ("its channel's acquisition_value" if result.new_values is not None
                    else "margin x its channel's mean_clv (remaining CLV of existing customers)")
    lines.append(
        f"Budget allocation (budget {s['budget']:,.0f}; allocated {s['allocated']:,.0f}; "
        f"unallocated {s['unallocated']:,.0f})"
    )
    lines.append(f"  an acquired customer is valued at {per_customer}; expected_clv = that x expected_customers")
    alloc_cols = {
        "channel": str, "allocated_spend": _plain, "expected_customers": _plain,
        "expected_clv": _plain, "marginal_ltv_cac": _ratio, "bound": str,
    }
    alloc = ch[ch["channel"] != UNKNOWN]
    lines.append(
        alloc[list(alloc_cols)].to_string(index=False, formatters=alloc_cols, na_rep="-")
    )
    lines.append(
        f"expected customers {s['expected_customers']:,.0f}; expected CLV on margin "
        f"{s['expected_clv']:,.0f}; net of spend {s['expected_net_value']:,.0f}"
    )
    if len(result.segments):
        lines.append("")
        budget_note = (
            f"; retention budget {result.retention_budget:,.0f}" if result.retention_budget else ""
        )
        lines.append(
            f"Segments (remaining CLV of existing customers; retention share follows CLV at risk{budget_note})"
        )
        seg_cols = {
            "segment": str, "customers": _plain, "clv_share": _share, "mean_p_alive": _share,
            "clv_at_risk": _plain, "retention_share": _share, "retention_budget": _plain,
        }
        lines.append(
            result.segments[list(seg_cols)].to_string(index=False, formatters=seg_cols, na_rep="-")
        )
    if result.warnings:
        lines.append("")
        lines.extend(f"WARNING: {w}" for w in result.warnings)
    return "\n".join(lines)


_VERDICT_COLOURS = {"grow": "#2e7d32", "hold": "#f9a825", "cut": "#c62828"}


def ltv_cac_chart(result: BudgetResult) -> Figure:
    """Bar chart of LTV:CAC per channel, coloured by verdict, with the target and 1:1 lines.

    Built on :class:`matplotlib.figure.Figure` directly (no pyplot), so nothing is shown or kept
    in global state; call ``fig.savefig(path)`` to write it.
    """
    data = result.channels[np.isfinite(result.channels["ltv_cac"].astype(float))]
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    colours = [_VERDICT_COLOURS.get(v, "#9e9e9e") for v in data["verdict"]]
    errors = None
    if {"ltv_cac_lower", "ltv_cac_upper"} <= set(data.columns):
        low = (data["ltv_cac"] - data["ltv_cac_lower"]).clip(lower=0).fillna(0)
        high = (data["ltv_cac_upper"] - data["ltv_cac"]).clip(lower=0).fillna(0)
        errors = [low.to_numpy(float), high.to_numpy(float)]
    bars = ax.bar(data["channel"].astype(str), data["ltv_cac"], color=colours, yerr=errors, capsize=4)
    ax.bar_label(bars, labels=[f"{v:.1f}" for v in data["ltv_cac"]], padding=2)
    ax.axhline(result.target_ratio, color="black", linestyle="--",
               label=f"target {result.target_ratio:g}:1")
    ax.axhline(1.0, color="grey", linestyle=":", label="break-even 1:1")
    tops = data["ltv_cac_upper"] if "ltv_cac_upper" in data.columns else data["ltv_cac"]
    top = max([result.target_ratio, *data["ltv_cac"].tolist(), *tops.dropna().tolist()])
    ax.set_ylim(0, top * 1.15)  # room for the bar labels and the target line
    ax.set_ylabel("LTV:CAC")
    basis = ("acquisition value of a new customer" if result.new_values is not None
             else REMAINING_BASIS.replace(", not", ",\nnot"))
    ax.set_title(f"LTV:CAC by acquisition channel\n({basis})", fontsize=10)
    ax.legend(loc="upper right")
    if data.empty:
        ax.text(0.5, 0.5, "no channel with customers and a CAC", ha="center",
                transform=ax.transAxes)
    return fig


#: How to read the budget page's chart, one sentence.
CHART_NOTE = ("Each channel's lifetime value per acquisition cost (LTV:CAC), coloured by verdict (green grow, amber "
              "hold, red cut): a bar above the dashed target line pays back well, one below the dotted 1:1 line "
              "loses money on every customer acquired.")


def render_html(result: BudgetResult, title: str = "clvmodel budget report") -> str:
    """The budget run as one self-contained HTML page (:mod:`clvmodel.html_report`): the headline numbers,
    the LTV:CAC chart, the channel table with its allocation, the segments and the warnings.

    The headline numbers carry ``data-metric="budget.<key>"`` (as logged to the MLflow run); every
    text, channel names included, is escaped.
    """
    from clvmodel import html_report as page

    s = result.summary()
    head = "".join(f"<th>{page.escape(k)}</th>" for k in s)
    cells = "".join(page.cell(v, f"budget.{k}", digits=0) for k, v in s.items())
    parts = [f'<p class="note">Target LTV:CAC {page.escape(f"{result.target_ratio:g}")}:1, margin '
             f'{page.escape(f"{result.margin:.0%}")}. Value: {page.escape(result.value_basis)}.</p>',
             f'<h2>Budget</h2><table id="summary"><tr>{head}</tr><tr>{cells}</tr></table>',
             page.figure_html("ltv_cac.png", ltv_cac_chart(result), CHART_NOTE)]
    channels = result.channels
    shown = [c for c in ("channel", "customers", "mean_clv", "acquisition_value", "acquisition_value_lower",
                         "acquisition_value_upper", "cac", "ltv_cac", "max_allowable_cac", "payback_periods",
                         "verdict", "allocated_spend", "expected_customers", "expected_clv", "marginal_ltv_cac",
                         "bound") if c in channels.columns]
    parts.append("<h2>Channels</h2><p>What an acquired customer of each channel is worth against what it costs, "
                 "and the spend the allocation gives each channel.</p>"
                 + page.table(channels[shown], "channels", digits={"customers": 0}))
    if len(result.segments):
        parts.append("<h2>Segments</h2><p>Existing customers: their share of the remaining CLV and of the "
                     "retention budget.</p>" + page.table(result.segments, "segments"))
    if result.warnings:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{page.escape(w)}</li>" for w in result.warnings) + "</ul>")
    return page.render_page(title, parts)
