"""One quoting module (clvmodel.sqltext), and no value reaching SQL text any other way.

The quoting functions are tested on hostile text against the real engines (DuckDB here, Spark in
tests/test_spark.py). The static test walks every f-string of the package whose text is SQL and
checks each interpolated expression: a call to a quoting function, a constant, a local built
only from those, or a parameter listed in :data:`TRUSTED` with the reason it never holds a
user's value. A new interpolation of anything else fails it, and so does ``!r`` (Python's
quoting, not SQL's) or ``.format``/``%`` on SQL text.
"""

from __future__ import annotations

import ast
import datetime as dt
import math
import re
from pathlib import Path

import duckdb
import numpy as np
import pytest

from clvmodel.errors import ClvError
from clvmodel.sqltext import date_literal, identifier, literal, number, spark_identifier, spark_literal

SRC = Path(__file__).resolve().parents[1] / "src" / "clvmodel"

HOSTILE = [
    "plain",
    "it's",
    "x.csv', header=true) LIMIT 0; COPY (SELECT 'x' AS msg) TO 'PWNED.csv'; SELECT * FROM read_csv('x.csv",
    "back\\slash\\' quote",
    "''''",
    'double "quotes"',
    "new\nline\ttab",
    "ünïcödé ✓",
    "--comment /* block */",
    "",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_literal_round_trips_through_duckdb(text: str) -> None:
    with duckdb.connect() as con:
        assert con.execute(f"SELECT {literal(text)}").fetchone()[0] == text


@pytest.mark.parametrize("text", HOSTILE[:-1])
def test_identifier_round_trips_through_duckdb(text: str) -> None:
    with duckdb.connect() as con:
        rel = con.execute(f"SELECT 1 AS {identifier(text)}")
        assert [d[0] for d in rel.description] == [text]


def test_nul_is_refused_in_every_quoting_function() -> None:
    for quote in (literal, identifier, spark_literal, spark_identifier):
        with pytest.raises(ClvError, match="NUL"):
            quote("a\x00b")


def test_spark_literal_escapes_backslash_and_quote() -> None:
    # Spark reads a backslash as an escape: the DuckDB form would end the literal at \'
    assert spark_literal("a'b") == "'a\\'b'"
    assert spark_literal("a\\'; DROP") == "'a\\\\\\'; DROP'"
    assert spark_identifier("a`b") == "`a``b`"


def test_date_literal_takes_real_dates_only() -> None:
    assert date_literal(dt.date(1997, 9, 30)) == "DATE '1997-09-30'"
    for value in ("1997-09-30' OR 1=1 --", dt.datetime(1997, 9, 30, 12), None, 19970930):
        with pytest.raises(TypeError):
            date_literal(value)  # type: ignore[arg-type]


def test_number_takes_finite_reals_only() -> None:
    assert number(7) == "7"
    assert number(np.int64(7)) == "7"
    assert number(0.01) == "0.01"
    assert number(np.float64(1e-5)) == "1e-05"
    with duckdb.connect() as con:
        for value in (0.1, 1e-300, 123456789.123456789, -2.5, 1e300):
            assert con.execute(f"SELECT {number(value)}::DOUBLE").fetchone()[0] == value
    for bad in (math.nan, math.inf, -math.inf, np.float64("nan")):
        with pytest.raises(ClvError, match="not a finite number"):
            number(bad)
    for wrong in (True, "0.5", "1; DROP TABLE x", None, b"1"):
        with pytest.raises(TypeError):
            number(wrong)  # type: ignore[arg-type]


# --- the static check ------------------------------------------------------------------------

#: Text that makes a string SQL (case-sensitive keywords: messages say "set data.delimiter").
SQL = re.compile(
    r"\b(SELECT|FROM|WHERE|COPY|CREATE|DROP|SET|CAST|DATE|HAVING|GROUP BY|ORDER BY|CASE|WHEN|THEN|LIMIT|"
    r"UNION|JOIN|FILTER|read_csv|read_parquet|parquet_metadata|parquet_file_metadata|TRY_CAST|TRY_STRPTIME|"
    r"TRY_TO_TIMESTAMP|regexp_matches|RLIKE|NULLIF|coalesce|count_if|struct)\b|delim=|encoding="
)
#: The quoting functions (and the old names that now are they).
WRAPPERS = {"literal", "identifier", "date_literal", "number", "spark_literal", "spark_identifier", "_quote",
            "_sql_str", "sql_literal"}
#: Functions of the package that return SQL built by these same rules (checked where they are defined).
SQL_BUILDERS = {"parsed_sql", "_parsed_columns", "_day_expression", "rfm_sql", "features_sql", "targets_sql",
                "segment_sql", "_rfm_checks", "_accounting_sql", "csv_safe_sql", "csv_unescape_sql",
                "_first_chars_sql", "_days_sql", "shape_sql", "value_sql", "kinds_sql", "_parts_sql",
                "parts_sql", "days_sql", "_period_sql", "period_totals_sql", "first_orders_sql",
                "observed_cohort_sql"}
#: Names that are not built in the function where they are interpolated, per module, and why they
#: never hold a user's value. Anything else must be traced to quoting functions and constants.
TRUSTED: dict[str, dict[str, str]] = {
    "batch.py": {
        "query": "BatchInput.query: built by plan_input from quoted parts, or a caller's own SQL",
        "source": "segment_sql's relation (read_parquet of a quoted temp path); BatchInput.late_query",
        "source.late_query": "built by plan_input with date_literal",
        "body": "segment_sql's result, wrapped in this function",
    },
    "predict.py": {"plan.late_query": "built by inputs.plan_input with date_literal"},
    "io.py": {
        "existing": "'VIEW' or 'TABLE', constants of the query that yields it",
        "base": "'raw' or 'raw_amounts' (returned by _amount_parts), internal relation names",
        "columns": "_parsed_columns' SQL fragments (identifiers quoted there)",
        "relation": "'raw' or a constant subquery over it",
        "odd_year": "_row_examples' condition, built by _load from FIRST_YEAR/LAST_YEAR",
        "bad_amount": "_row_examples' condition, a constant of _load",
        "huge": "_row_examples' condition, built by _load with sqltext.number",
        "column": "csv_safe_sql / csv_unescape_sql: an SQL expression of the caller (an identifier it quoted)",
        "stored": "_days_by_stored_id's id column: sqltext.identifier of data.columns.customer_id (its caller)",
        "customer": "_kept_duplicates' id: identifier-quoted by _load, or _parsed_columns' id expression",
        "days": "refuse_late_dates' table: 'days' (DuckDB) or _sql_on's uuid temporary view (Spark)",
    },
    "amounts.py": {
        "text": "the caller's SQL expression of the amount's text (io: TRIM of a quoted identifier, or 't')",
        "parts": "the caller's column of amount parts (io: identifier(amounts.PARTS), or 'p')",
        "m": "the parts column, as parts",
    },
    "rfm.py": {
        "table": "an internal table or view name (transactions, days, a uuid view), never a user's",
        "name": "an internal table name (days)",
        "source": "table or days, internal table names",
        "days": "internal table name parameter of summarise / repeat_transactions_by_period",
        "period": "_period_sql's expression (date_literal and number)",
    },
    "models/challenger.py": {
        "table": "an internal table or view name (transactions, a uuid calibration view)",
        "view": "the uuid view name _calibration_view returns",
        "name": "_calibration_view's uuid view name",
        "self.table": "DuckDBReader's table: an internal table or view name (transactions, a uuid calibration view)",
    },
    "acquired.py": {"days": "first_orders_sql's relation: 'days' (DuckDB) or _sql_on's uuid temporary view (Spark)"},
    "cohorts.py": {
        "days": "observed_cohort_sql's relation: identifier('days') (duckdb_runner) or _sql_on's uuid view (Spark)",
        "channels": "observed_cohort_sql's channels relation: an identifier-quoted uuid view (duckdb_runner) or "
                    "a uuid temporary view (Spark)",
    },
    "spark/load.py": {"column": "_day_expression's column: spark_identifier-quoted by its caller"},
    "spark/summary.py": {"table": "the uuid temporary view name of _sql_on"},
    "spark/challenger.py": {"view": "the uuid temporary view name of _sql_on"},
    "spark/validate.py": {"condition": "_rfm_checks' conditions", "i": "an enumerate index"},
}


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_sql_text(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(SQL.search(node.value))
    if isinstance(node, ast.JoinedStr):
        return bool(SQL.search("".join(v.value for v in node.values if isinstance(v, ast.Constant))))
    return False


class _Checker:
    """Whether an expression interpolated into SQL is built only from quoted values and constants."""

    def __init__(self, module: str, function: ast.AST | None) -> None:
        self.module = module
        self.trusted = TRUSTED.get(module, {})
        self.bindings: dict[str, list[ast.AST]] = {}
        self.comprehension: dict[str, ast.AST] = {}
        self.memo: dict[str, bool] = {}
        if function is not None:
            for node in ast.walk(function):
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        self._bind(target, node.value)
                elif isinstance(node, ast.comprehension):
                    for target in ast.walk(node.target):
                        if isinstance(target, ast.Name):
                            self.comprehension[target.id] = node.iter
                elif isinstance(node, ast.For):
                    for target in ast.walk(node.target):
                        if isinstance(target, ast.Name):
                            self.bindings.setdefault(target.id, []).append(ast.Name(id="<loop>"))

    def _bind(self, target: ast.AST, value: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self.bindings.setdefault(target.id, []).append(value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for i, element in enumerate(target.elts):
                if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                    self._bind(element, value.elts[i])
                elif isinstance(value, ast.GeneratorExp):
                    self._bind(element, value.elt)
                else:
                    self._bind(element, value)  # unpacked from a call: the call is checked

    def safe(self, node: ast.AST, seen: frozenset[str] = frozenset()) -> bool:
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.JoinedStr):
            return all(
                v.conversion == -1 and v.format_spec is None and self.safe(v.value, seen)
                for v in node.values
                if isinstance(v, ast.FormattedValue)
            )
        if isinstance(node, ast.IfExp):
            return self.safe(node.body, seen) and self.safe(node.orelse, seen)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.safe(node.left, seen) and self.safe(node.right, seen)
        if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
            return self.safe(node.elt, seen)
        if isinstance(node, ast.DictComp):
            return self.safe(node.value, seen)
        if isinstance(node, (ast.Tuple, ast.List)):
            return all(self.safe(e, seen) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(self.safe(v, seen) for v in node.values)
        if isinstance(node, ast.Call):
            func = _name(node.func)
            if func in WRAPPERS or func in SQL_BUILDERS:
                return True
            if func == "join" and isinstance(node.func, ast.Attribute):  # ", ".join(parts)
                return self.safe(node.func.value, seen) and all(self.safe(a, seen) for a in node.args)
            if func in {"items", "values"} and isinstance(node.func, ast.Attribute):  # a safe dict's parts
                return self.safe(node.func.value, seen)
            if func == "format" and isinstance(node.func, ast.Attribute):  # CONSTANT.format(v='column')
                return self.safe(node.func.value, seen) and all(self.safe(k.value, seen) for k in node.keywords)
            return False
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            if ast.unparse(node) in self.trusted:
                return True
            if isinstance(node, ast.Attribute) and re.fullmatch(r"_?[A-Z][A-Z0-9_]*", node.attr):
                return True  # another module's constant (checks.FIRST_YEAR)
            return self.safe(node.value, seen)
        if isinstance(node, ast.Name):
            name = node.id
            if name == "<loop>":
                return name in self.trusted
            if re.fullmatch(r"_?[A-Z][A-Z0-9_]*", name):  # a module constant
                return True
            if name in self.trusted:
                return True
            if name in seen:
                return True  # a += b: the other bindings decide
            if name not in self.memo:
                if name in self.bindings:
                    self.memo[name] = all(self.safe(v, seen | {name}) for v in self.bindings[name])
                elif name in self.comprehension:
                    self.memo[name] = self.safe(self.comprehension[name], seen | {name})
                else:
                    self.memo[name] = False
            return self.memo[name]
        return False


def _functions(tree: ast.Module) -> dict[ast.AST, ast.AST | None]:
    """Each node's innermost enclosing function (``None`` at module level); a function's is the one around it."""
    owner: dict[ast.AST, ast.AST | None] = {}

    def visit(node: ast.AST, function: ast.AST | None) -> None:
        for child in ast.iter_child_nodes(node):
            owner[child] = function
            visit(child, child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function)

    visit(tree, None)
    return owner


def sql_violations(source: str, module: str) -> list[str]:
    """Each interpolation into SQL text of ``source`` that is not traced to quoting or constants."""
    tree = ast.parse(source)
    owner = _functions(tree)
    # An enclosing function's bindings count too (nested helpers such as io's parsed_sql).
    checkers: dict[ast.AST | None, _Checker] = {}

    def checker(node: ast.AST) -> _Checker:
        function = owner.get(node)
        if function not in checkers:
            checkers[function] = _Checker(module, function)
            outer = owner.get(function) if function is not None else None
            while outer is not None:
                for name, values in _Checker(module, outer).bindings.items():
                    checkers[function].bindings.setdefault(name, values)
                outer = owner.get(outer)
        return checkers[function]

    found = []
    for node in ast.walk(tree):
        where = f"{module}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.JoinedStr) and _is_sql_text(node):
            for value in node.values:
                if not isinstance(value, ast.FormattedValue):
                    continue
                if value.conversion != -1:
                    found.append(f"{where}: !{chr(value.conversion)} in SQL: {ast.unparse(value.value)}")
                elif not checker(node).safe(value.value):
                    found.append(f"{where}: {ast.unparse(value.value)}")
        elif isinstance(node, ast.Call) and _name(node.func) == "format" and isinstance(node.func, ast.Attribute):
            if isinstance(node.func.value, ast.Constant) and _is_sql_text(node.func.value):
                found.append(f"{where}: str.format on SQL text")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_sql_text(node.left):
            found.append(f"{where}: % formatting of SQL text")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            sides = (node.left, node.right)
            if any(_is_sql_text(s) for s in sides) and not all(checker(node).safe(s) for s in sides):
                found.append(f"{where}: + of SQL text and {ast.unparse(node)[:80]}")
    return found


def test_no_value_reaches_sql_text_unquoted() -> None:
    violations = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "sqltext.py" and path.parent == SRC:  # the quoting functions themselves
            continue
        violations += sql_violations(path.read_text(encoding="utf-8"), str(path.relative_to(SRC).as_posix()))
    assert violations == []


@pytest.mark.parametrize(
    "planted",
    [
        "def f(con, path):\n    con.execute(f\"SELECT * FROM read_csv('{path}')\")\n",
        "def f(con, as_of):\n    return f\"SELECT 1 WHERE day > DATE '{as_of}'\"\n",
        "def f(settings):\n    return f\"WHEN p_alive < {settings['lost_below']!r} THEN 'lost'\"\n",
        "def f(con, delim):\n    d = delim\n    con.sql(f\"SELECT * FROM read_csv('x', delim='{d}')\")\n",
        "def f(con, path):\n    con.execute(\"COPY (SELECT 1) TO '%s'\" % path)\n",
        "def f(con, path):\n    con.execute(\"SELECT * FROM read_csv('{}')\".format(path))\n",
        "def f(con, path):\n    con.execute(\"SELECT * FROM read_csv('\" + path + \"')\")\n",
    ],
)
def test_the_static_check_catches_a_planted_violation(planted: str) -> None:
    assert sql_violations(planted, "planted.py") != []


def test_the_static_check_accepts_quoted_values() -> None:
    quoted = (
        "def f(con, path, as_of, columns):\n"
        "    cols = ', '.join(identifier(c) for c in columns)\n"
        "    con.execute(f\"SELECT {cols} FROM read_csv({literal(path)}) WHERE day > {date_literal(as_of)}\")\n"
    )
    assert sql_violations(quoted, "planted.py") == []
