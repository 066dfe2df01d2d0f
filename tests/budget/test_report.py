"""Tests for clvmodel.budget.report: the text report and the LTV:CAC chart."""

from __future__ import annotations

import io
from collections.abc import Callable

import pandas as pd
from matplotlib.figure import Figure

from clvmodel.budget import CacConfig, format_report, ltv_cac_chart, run_budget


def test_format_report_and_chart(
    small_config: Callable[..., CacConfig],
    full_scores: Callable[[], pd.DataFrame],
    full_customers: Callable[[], pd.DataFrame],
) -> None:
    result = run_budget(full_scores(), small_config(budget=1000, horizon=6),
                        customers=full_customers())
    text = format_report(result)
    for piece in ["LTV:CAC by channel (target 3:1, margin 50% applied)", "3.00:1", "grow",
                  "hold", "cut", "n/a", "Budget allocation (budget 1,000; allocated 1,000; "
                  "unallocated 0)", "Segments", "WARNING: "]:
        assert piece in text, piece
    fig = ltv_cac_chart(result)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "d"]  # ratios only
    assert any(list(line.get_ydata()) == [3.0, 3.0] for line in ax.get_lines())  # target line
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
