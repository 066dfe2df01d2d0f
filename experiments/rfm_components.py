"""What each part of the load + RFM summary costs at 10 M rows, next to the same-day floor (issue 16, target 1).

    PYTHONPATH=$PWD/src python experiments/rfm_components.py

Pure SQL on plain DuckDB connections, best of 3 rounds (floor and parts alternating), wall and CPU
(``time.process_time``: every DuckDB thread): the floor (benchmark's ``rfm_duckdb_days`` query,
fetched as a DataFrame); the ``days`` table every later stage reads (grouped by the stored id,
exact decimal sums); the summary query on it (sorted, ``fetchnumpy``); the distinct-id pass (the
report's customers and the trim check of :func:`clvmodel.io._days_by_stored_id`); the duplicate
search. The cumulative ratio says what the checks add to the tables the run needs anyway.
"""
import time, datetime as dt, duckdb
F = "read_parquet('/work/benchdata/tx_10M.parquet')"
from clvmodel import rfm
def run(steps):
    con = duckdb.connect(); con.execute("SET TimeZone='UTC'")
    out = []
    for name, sql, fetch in steps:
        w = time.perf_counter(); c = time.process_time()
        r = con.execute(sql)
        if fetch == "df": r.df()
        elif fetch == "np": r.fetchnumpy()
        else: r.fetchall()
        out.append((name, time.perf_counter() - w, time.process_time() - c))
    con.close()
    return out
floor = [("floor", f"SELECT customer_id, count(*) AS days, min(date) AS first_day, max(date) AS last_day, sum(amount) AS spend FROM (SELECT customer_id, date, sum(amount) AS amount FROM {F} GROUP BY customer_id, date) GROUP BY customer_id", "df")]
summary = rfm.rfm_sql("days", dt.date(2025, 12, 30), dt.date(2025, 12, 30), 7, False, per_day=True, first_day=True)
ours = [
    ("days table (stored ids)", f"CREATE TABLE days AS SELECT customer_id, date AS day, SUM(CAST(amount AS DECIMAL(38, 9))) AS amount, count(*) AS n FROM {F} GROUP BY customer_id, date", "all"),
    ("summary query + fetchnumpy", summary, "np"),
    ("distinct ids (trim check, customers)", "SELECT count(*) FILTER (WHERE customer_id IS DISTINCT FROM NULLIF(TRIM(customer_id), '')), count(customer_id) FROM (SELECT DISTINCT customer_id FROM days)", "all"),
    ("duplicate search", f"SELECT coalesce(sum(k - 1), 0) FROM (SELECT count(*) AS k FROM (SELECT *, customer_id AS _customer, date AS _day FROM {F}) r SEMI JOIN (SELECT customer_id, day FROM days WHERE n > 1) d ON r._customer = d.customer_id AND r._day = d.day GROUP BY r.customer_id, r.date, r.amount HAVING count(*) > 1)", "all"),
]
best = {}
for i in range(3):
    for steps in (floor, ours):
        for name, w, c in run(steps):
            b = best.setdefault(name, [w, c]); b[0] = min(b[0], w); b[1] = min(b[1], c)
fw, fc = best["floor"]
cw = cc = 0.0
for name, (w, c) in best.items():
    if name != "floor": cw += w; cc += c
    print(f"{name:<40} wall {w:6.2f} ({w/fw:4.2f}x)  CPU {c:6.2f} ({c/fc:4.2f}x)   cumulative wall {cw/fw if name!='floor' else 1:4.2f}x CPU {cc/fc if name!='floor' else 1:4.2f}x")
