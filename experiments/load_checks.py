"""Issue 16, targets 1 and 5: what the load's checks cost, statement by statement, and what their alternatives would.

    PYTHONPATH=src nice -n 5 python experiments/load_checks.py [--source /work/benchdata/tx_10M.parquet]
        [--repeat 3] [--part steps,alternatives]

What it measures, in one process (Linux only: /proc), best of ``--repeat`` rounds, wall seconds and
CPU seconds (``time.process_time``: every thread of the process, DuckDB's and the fingerprint's):

* ``steps``: :func:`clvmodel.io.load_transactions` and :func:`clvmodel.rfm.summarise` (weeks, no
  split) as the benchmark runs them, each SQL statement timed through a proxy around the DuckDB
  connection, with its own peak resident set (``VmHWM`` after the kernel's high-water mark is reset
  through /proc/self/clear_refs before the statement) and the resident set after it;
* ``alternatives``: on the same file, the ``days`` GROUP BY as the load runs it and with the
  per-group aggregates that could settle exact duplicates in that scan (``max``, ``min`` and
  ``max``, ``list``, and each group's duplicates from its list: n less its distinct amounts); the duplicate search as the load runs it (a second read, semi join on the
  ``days.n > 1`` groups) and restricted to the groups with ``n > 2`` (what remains when ``n = 2``
  groups are settled by aggregates: the lower bound of that saving); the distinct-id query of the
  load (its customers and the trimmed-id check), ``count(DISTINCT)`` alone, and the trimmed-id check
  as a per-row filter on ``days`` (no DISTINCT). Each alternative's answer is printed beside its time.

Nothing here changes the load; the figures are for docs/results and the issue.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import duckdb

from clvmodel import io, rfm
from clvmodel.config import DataConfig
from clvmodel.sqltext import literal


def status(field: str) -> float:
    """This process's ``field`` of /proc/self/status (``VmRSS``, ``VmHWM``), in MB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(field)


def reset_peak() -> None:
    """Reset the kernel's high-water mark (``VmHWM``) to the current resident set."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


class Timed:
    """A DuckDB connection whose ``execute`` runs the statement and fetches its rows, timed and measured."""

    def __init__(self, con: duckdb.DuckDBPyConnection, rows: list[tuple[str, float, float, float, float]]) -> None:
        self.con, self.rows = con, rows

    def execute(self, sql: str, *args: Any) -> Any:
        reset_peak()
        wall, cpu = time.perf_counter(), time.process_time()
        result = self.con.execute(sql, *args)
        fetched = result.fetchall() if result.description else []
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.rows.append((" ".join(sql.split()), wall, cpu, status("VmHWM"), status("VmRSS")))
        return _Rows(fetched)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


class _Rows:
    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows

    def fetchall(self) -> list[tuple]:
        return self.rows

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def fetchnumpy(self) -> dict[str, Any]:
        raise NotImplementedError


def steps(source: str, repeat: int) -> None:
    best: dict[str, list[float]] = {}
    order: list[str] = []
    for _ in range(repeat):
        rows: list[tuple[str, float, float, float, float]] = []
        con = io.connect()
        try:
            io.load_transactions(Timed(con, rows), DataConfig(source=source))  # type: ignore[arg-type]
            reset_peak()
            wall, cpu = time.perf_counter(), time.process_time()
            rfm.summarise(con, time_unit="week", days="days")
            rows.append(("rfm.summarise (days)", time.perf_counter() - wall, time.process_time() - cpu,
                         status("VmHWM"), status("VmRSS")))
        finally:
            con.close()
        for sql, wall, cpu, peak, after in rows:
            if sql not in best:
                order.append(sql)
                best[sql] = [wall, cpu, peak, after]
            else:
                kept = best[sql]
                best[sql] = [min(kept[0], wall), min(kept[1], cpu), min(kept[2], peak), min(kept[3], after)]
    print(f"steps: best of {repeat} (wall s, CPU s, peak MB inside, RSS MB after); statements under 0.02 s left out")
    for sql in order:
        wall, cpu, peak, after = best[sql]
        if wall >= 0.02:
            print(f"  {wall:5.2f} {cpu:5.2f} {peak:6.0f} {after:6.0f}  {sql[:120]}")


def alternatives(source: str, repeat: int) -> None:
    con = io.connect()
    con.execute(f"CREATE VIEW raw AS SELECT * FROM read_parquet({literal(source)})")

    def timed(name: str, sql: str) -> None:
        wall_best = cpu_best = float("inf")
        answer: Any = None
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            answer = con.execute(sql).fetchall()
            wall_best, cpu_best = min(wall_best, time.perf_counter() - wall), min(cpu_best, time.process_time() - cpu)
        print(f"  {name:<44} wall {wall_best:5.2f} CPU {cpu_best:5.2f}  {str(answer)[:70]}", flush=True)

    rows = "SELECT customer_id, CAST(date AS DATE) AS day, CAST(amount AS DOUBLE) AS amount FROM raw WHERE amount >= 0"
    days = ("CREATE OR REPLACE TABLE days_{name} AS SELECT customer_id, day, SUM(CAST(amount AS DECIMAL(38, 9))) AS "
            f"amount, count(*) AS n{{extra}} FROM ({rows}) GROUP BY customer_id, day")
    print(f"alternatives: best of {repeat}")
    for name, extra in [("plain", ""), ("max", ", max(amount) AS hi"), ("minmax", ", min(amount) AS lo, max(amount) AS hi"),
                        ("list", ", list(amount) AS amounts"),
                        ("list_distinct", ", CAST(count(*) - length(list_distinct(list(amount))) AS INTEGER) AS dup")]:
        timed(f"days GROUP BY {'+ ' + name if extra else '(as the load)'}", days.format(name=name, extra=extra))
        if name == "list_distinct":
            timed("  its duplicates (sum of dup)", "SELECT sum(dup) FROM days_list_distinct")
        if name not in ("plain", "minmax"):  # kept for the queries below; the others only cost memory
            con.execute(f"DROP TABLE days_{name}")
    timed("groups n > 1 by n: all, min = max", "SELECT n, count(*), count(*) FILTER (WHERE lo = hi) FROM days_minmax "
          "WHERE n > 1 GROUP BY n ORDER BY n")
    duplicates = (
        "SELECT coalesce(sum(k - 1), 0) FROM (SELECT count(*) AS k FROM (SELECT *, CAST(date AS DATE) AS _day FROM raw) r "
        "SEMI JOIN (SELECT customer_id, day FROM days_plain WHERE n > {n}) d ON r.customer_id = d.customer_id "
        "AND r._day = d.day GROUP BY r.customer_id, r.date, r.amount HAVING count(*) > 1)"
    )
    timed("duplicates: re-read, groups n > 1 (the load)", duplicates.format(n=1))
    timed("duplicates: re-read, groups n > 2 only", duplicates.format(n=2))
    timed("distinct ids + trim check (the load)",
          "SELECT count(*) FILTER (WHERE customer_id IS DISTINCT FROM NULLIF(TRIM(customer_id), '')), count(customer_id) "
          "FROM (SELECT DISTINCT customer_id FROM days_plain)")
    timed("count(DISTINCT customer_id)", "SELECT count(DISTINCT customer_id) FROM days_plain")
    timed("trim check per days row, no DISTINCT",
          "SELECT count(*) FILTER (WHERE customer_id IS DISTINCT FROM NULLIF(TRIM(customer_id), '')) FROM days_plain")
    con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/work/benchdata/tx_10M.parquet")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--part", default="steps,alternatives")
    args = parser.parse_args(argv)
    print(f"{os.uname().nodename}: {os.cpu_count()} cores; load {os.getloadavg()}", flush=True)
    parts = args.part.split(",")
    if "steps" in parts:
        steps(args.source, args.repeat)
    if "alternatives" in parts:
        alternatives(args.source, args.repeat)
    print(f"load {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
