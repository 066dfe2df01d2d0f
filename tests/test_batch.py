"""The streamed scorer (:mod:`clvmodel.batch`) through ``clvmodel score``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvmodel.cli import main


def test_scores_keep_the_input_order_at_a_size_duckdb_runs_in_parallel(trained_cdnow, tmp_path):
    # 120 copies of the CDNOW summary (282,840 customers) under shuffled ids: at this size DuckDB
    # runs the final COPY in parallel, and before the order was taken in the outermost query two
    # runs on 126,060 customers wrote 3,180 rows in different places. The output must follow the
    # input's rows one for one, in every run.
    summary = trained_cdnow.result.rfm.summary[["frequency", "recency", "T", "monetary_value"]]
    copies = 120
    rows = pd.concat([summary] * copies, ignore_index=True)
    ids = np.random.default_rng(7).permutation(len(rows))
    rows.insert(0, "customer_id", [f"c{i:07d}" for i in ids])
    source = tmp_path / "rfm.parquet"
    rows.to_parquet(source, index=False)
    for run in range(2):
        output = tmp_path / f"scores{run}.csv"
        assert main(["score", "--model", str(trained_cdnow.model_dir), "--input", str(source), "--output", str(output)]) == 0
        scores = pd.read_csv(output, dtype={"customer_id": str})
        assert scores["customer_id"].tolist() == rows["customer_id"].tolist()
        np.testing.assert_array_equal(scores["frequency"].to_numpy(), rows["frequency"].to_numpy())
