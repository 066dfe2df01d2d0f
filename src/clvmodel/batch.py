"""Scoring files larger than memory: chunks in, chunks out.

``clvmodel score`` on a large input streams it: the RFM rows (read from the file, or summarised
from transactions by the same SQL as training, :func:`clvmodel.rfm.rfm_sql`) are pulled from
DuckDB ``chunk_size`` rows at a time, scored with :func:`clvmodel.predict.score` (vectorised over
the chunk's unique rows) and appended to a temporary Parquet file, which one DuckDB query then
writes as the output — again to a temporary file renamed into place
(:func:`clvmodel.files.write_atomically`). Memory is bounded by the chunk size, not by the number
of customers.

Segments: a model's boundaries are fixed at training (:mod:`clvmodel.segments`), so each chunk's
customers are labelled by :func:`~clvmodel.predict.score` as they would be alone. A model saved
before the boundaries existed ranks customers across the whole file: its segments are assigned
afterwards by :func:`segment_sql`, one out-of-core sort, ties in predicted CLV broken by customer
id as in :func:`clvmodel.segments.assign_segments`, so the streamed scores equal the one-shot
scores exactly either way.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clvmodel.artifact import TrainedModel
from clvmodel.customers import validate_rfm
from clvmodel.errors import ClvError
from clvmodel.files import write_atomically
from clvmodel.inputs import BatchInput, plan_input  # noqa: F401 - plan_input re-exported (public name)
from clvmodel.predict import score
from clvmodel.sqltext import literal, number

__all__ = ["BatchInput", "BatchReport", "plan_input", "score_relation", "segment_sql", "output_summary"]

DEFAULT_CHUNK = 250_000


@dataclass
class BatchReport:
    """What a streamed scoring job did."""

    customers: int
    chunks: int
    output: Path


def _chunks(con: duckdb.DuckDBPyConnection, query: str, size: int) -> Iterator[pd.DataFrame]:
    reader = con.sql(query).to_arrow_reader(size)
    for batch in reader:
        yield batch.to_pandas()


def segment_sql(source: str, settings: dict[str, float], total: int) -> str:
    """SQL that adds ``segment`` to scored rows in ``source`` (a table name or a ``read_parquet(...)`` call),
    ranked within them: the rule of models saved without segment boundaries (:mod:`clvmodel.segments`).

    Same rule as :func:`clvmodel.segments.assign_segments`: rank ``k`` (1-based) by predicted CLV
    (expected purchases where there is no value), ties by customer id; share ``k / n``; tiers VIP, high, medium, low by share, then P(alive)
    thresholds override with ``at_risk`` and ``lost``; the best customer is always VIP.
    """
    # Ranked on CLV; where a customer has no value (a model without amounts), on expected purchases,
    # as :func:`clvmodel.predict.score` ranks in memory.
    rank = "coalesce(CASE WHEN isnan(predicted_clv) THEN NULL ELSE predicted_clv END, expected_purchases)"
    share = f"CAST(row_number() OVER (ORDER BY {rank} DESC NULLS LAST, customer_id) AS DOUBLE) / {number(total)}"
    # The thresholds come from the model document: numbers written by sqltext.number (which
    # refuses text, NaN and infinities), never by repr.
    lost, at_risk, vip, high, medium = (
        number(settings[key]) for key in ("lost_below", "at_risk_below", "vip_share", "high_share", "medium_share")
    )
    return f"""
    WITH ranked AS (SELECT *, {share} AS _share FROM {source}),
    labelled AS (
        SELECT *, CASE
            WHEN p_alive < {lost} THEN 'lost'
            WHEN p_alive < {at_risk} THEN 'at_risk'
            WHEN _share <= {vip} OR _share = {number(1.0 / total)} THEN 'VIP'
            WHEN _share <= {high} THEN 'high'
            WHEN _share <= {medium} THEN 'medium'
            ELSE 'low' END AS _segment
        FROM ranked
    )
    SELECT * EXCLUDE (_segment, _share) REPLACE (_segment AS segment)
    FROM labelled
    """


def score_relation(
    model: TrainedModel,
    con: duckdb.DuckDBPyConnection,
    source: BatchInput | str,
    output: str | Path,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool | None = None,
    **options: float | int | None,
) -> BatchReport:
    """Score the RFM rows ``query`` returns, chunk by chunk, into ``output`` (CSV or Parquet).

    Parameters
    ----------
    model
        A trained BTYD model (not an sBG one).
    con, source
        A DuckDB connection and a :class:`BatchInput` (or a bare query) yielding ``customer_id,
        frequency, recency, T[, monetary_value]`` — an RFM file or :func:`clvmodel.rfm.rfm_sql`
        over transactions. Customers of its ``late_query`` are appended with a status, and the
        challenger's forecast (transactions only) is joined on, scaled to the horizon.
    output
        Written atomically; ``.csv`` or ``.parquet``.
    chunk_size
        Rows per chunk; memory grows with it, not with the number of customers.
    progress
        Show a progress bar on stderr (default: when stderr is a terminal).
    options
        ``horizon``, ``discount_rate``, ``margin``, ``interval_draws``, ``interval_level`` as for
        :func:`clvmodel.predict.score`.
    """
    from clvmodel import io

    source = source if isinstance(source, BatchInput) else BatchInput(source, "rfm")
    query = source.query
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in {".csv", ".parquet", ".pq"}:
        raise ClvError(f"output {output}: unknown extension {suffix!r}; use .csv or .parquet")
    duplicate = con.execute(
        f"SELECT customer_id FROM ({query}) GROUP BY customer_id HAVING count(*) > 1 LIMIT 1"
    ).fetchall()
    if duplicate:
        raise ClvError(f"input: duplicated customer_id (e.g. {duplicate[0][0]!r}); an RFM table has one row per customer")
    total = int(con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0])
    if total == 0:
        raise ClvError("input: no customers to score (the table is empty)")
    output.parent.mkdir(parents=True, exist_ok=True)
    from clvmodel.staging import make_staging, release  # here, not above: one isolated change (issue 12)

    # The chunks' scores wait in a folder named as ours, so a later run removes it if this one is
    # killed (clvmodel.staging); the output itself is written by files.write_atomically.
    work = make_staging(output)
    scored = work / "scored.parquet"
    show = sys.stderr.isatty() if progress is None else progress
    chunks = 0
    try:
        writer: pq.ParquetWriter | None = None
        done = 0
        bar = _progress(total) if show else None
        for chunk in _chunks(con, f"SELECT * FROM ({query})", chunk_size):
            # Named by row range: a count in the message is of this chunk, not of the file.
            chunk = validate_rfm(chunk, origin=f"input rows {done + 1:,}-{done + len(chunk):,}")
            frame = score(model, chunk, **options)  # type: ignore[arg-type]
            frame.insert(len(frame.columns), "_row", range(done, done + len(frame)))
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(scored, table.schema)
            writer.write_table(table.cast(writer.schema))
            done += len(frame)
            chunks += 1
            if bar is not None:
                bar.update(len(frame))
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.close()
        fmt = "(FORMAT csv, HEADER)" if suffix == ".csv" else "(FORMAT parquet)"
        relation = f"read_parquet({literal(str(scored))})"
        # ``_row`` (the input's order) is carried through every step and ordered on once, in the
        # outermost query: DuckDB keeps no order through a join, a union or a projection over an
        # ordered subquery when it runs in parallel (at 126,060 customers two runs wrote 3,180
        # rows in different places).
        if getattr(model, "segment_boundaries", None) is not None:  # labelled per chunk, as alone
            body = f"SELECT * FROM {relation}"
        else:  # an older model: ranked across the whole file
            body = segment_sql(relation, model.segments, total)
        if source.challenger is not None and model.challenger is not None:
            factor = number(model.challenger.horizon_factor(float(options.get("horizon") or model.clv["horizon"])))
            con.register("challenger_forecast", source.challenger)
            body = (f"SELECT s.*, c.purchases * {factor} AS challenger_purchases, c.spend * {factor} AS "
                    f"challenger_spend FROM ({body}) s LEFT JOIN challenger_forecast c USING (customer_id)")
        if source.late_query:
            # After the scored rows, in customer order.
            body = (f"SELECT * FROM ({body}) UNION ALL BY NAME "
                    f"SELECT customer_id, 'first_purchase_after_as_of' AS status, "
                    f"{number(total)} + row_number() OVER (ORDER BY customer_id) AS _row FROM ({source.late_query})")
        if suffix == ".csv":  # formula-looking ids neutralised for spreadsheets (io.FORMULA_START)
            body = f"SELECT * REPLACE ({io.csv_safe_sql('customer_id')} AS customer_id) FROM ({body})"
        body = f"SELECT * EXCLUDE (_row) FROM ({body}) ORDER BY _row"
        late = con.execute(f"SELECT count(*) FROM ({source.late_query})").fetchall()[0][0] if source.late_query else 0
        reader = "read_csv" if suffix == ".csv" else "read_parquet"

        def copy(final: Path) -> None:
            # The output's folder is the user's (a quote in it is legal): a parameter, not SQL text.
            con.execute(f"COPY ({body}) TO ? {fmt}", [str(final)])
            # Nothing lost: every input customer is a row of the output, scored or with a status
            # (checked before the rename, so a short file never replaces the previous output).
            written = con.execute(f"SELECT count(*) FROM {reader}(?)", [str(final)]).fetchall()[0][0]
            if written != total + late:
                raise RuntimeError(f"clvmodel bug: {written:,} rows written for {total:,} scored + {late:,} refused customers")

        write_atomically(output, copy)
    except OSError as err:
        raise ClvError(f"cannot write {output}: {err.strerror or err}; check the folder's permissions and free space") from None
    finally:
        release(work)  # removes the folder and closes its lock (one descriptor per scored file otherwise)
    return BatchReport(customers=total, chunks=chunks, output=output)


def output_summary(con: duckdb.DuckDBPyConnection, output: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts by status, and customers / total / mean predicted CLV by segment, read back from
    the written file (the scores are never held in memory whole)."""
    reader = "read_parquet(?)" if output.suffix.lower() in {".parquet", ".pq"} else (
        "read_csv(?, header=true, types={'customer_id': 'VARCHAR', 'segment': 'VARCHAR', 'status': 'VARCHAR', "
        "'predicted_clv': 'DOUBLE'})")
    path = [str(output)]  # a parameter: the user's path never becomes SQL text
    status = con.sql(f"SELECT status, count(*) AS n FROM {reader} GROUP BY status ORDER BY status", params=path).df()
    segments = con.sql(
        f"SELECT segment, count(*) AS size, sum(predicted_clv) AS sum, avg(predicted_clv) AS mean "
        f"FROM {reader} WHERE status = 'ok' GROUP BY segment", params=path
    ).df().set_index("segment")
    return status, segments


class _progress:
    """A minimal text progress bar on stderr (no dependency; rich/tqdm are not required)."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0

    def update(self, n: int) -> None:
        self.done += n
        width = 30
        filled = int(width * self.done / self.total)
        print(f"\rscoring [{'#' * filled}{'.' * (width - filled)}] {self.done:,}/{self.total:,}", end="", file=sys.stderr)

    def close(self) -> None:
        print(file=sys.stderr)
