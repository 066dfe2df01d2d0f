"""Tests for clvmodel.checks: the engine-free rules and messages both engines raise.

The loads in tests/test_io.py and tests/test_bad_inputs.py reach these through DuckDB (and
tests/test_spark.py through Spark); here the functions are called with hand-made counts.
"""

from __future__ import annotations

import pytest

from clvmodel import checks
from clvmodel.config import Columns, DataConfig
from clvmodel.errors import ClvError

DATA = DataConfig(source="x.csv", columns=Columns(customer_id="id", date="day", amount="value"))


def _stats(**counts: object) -> dict[str, object]:
    return {**dict.fromkeys(checks.ROW_STATS, 0), "rows": 10, **counts}


def test_clean_counts_exclude_nothing() -> None:
    assert checks.check_rows(_stats(), DATA, None) == {}


def test_the_first_rule_broken_is_the_one_raised() -> None:
    stats = _stats(no_id=2, no_id_ex="dated 1997-01-01, amount 5", negative=1, negative_ex="a on 1997-01-02: -1")
    with pytest.raises(ClvError) as err:
        checks.check_rows(stats, DATA, None)
    assert str(err.value) == (
        "2 of 10 rows have no customer id (empty, NA, NaN or NULL) in column 'id' (e.g. the row dated 1997-01-01, "
        "amount 5); fill in the ids or remove those rows from the export"
    )


def test_refunds_are_excluded_and_counted_when_asked() -> None:
    stats = _stats(negative=3, negative_ex="a on 1997-01-02: -1")
    assert checks.check_rows(stats, DATA.model_copy(update={"negative_amounts": "exclude"}), None) == {
        "negative_amount": 3
    }
    with pytest.raises(ClvError, match="3 of 10 rows have a negative amount"):
        checks.check_rows(stats, DATA, None)


def test_bad_dates_are_looked_up_only_when_needed() -> None:
    def never() -> list[str]:
        raise AssertionError("bad_dates called without unparseable dates")

    assert checks.check_rows(_stats(), DATA, None, never) == {}
    with pytest.raises(ClvError, match="none of the 10 dates in column 'day' parse as ISO dates"):
        checks.check_rows(_stats(bad_date=10), DATA, None, lambda: ["31/12/1997"])


def test_matching_date_formats() -> None:
    assert checks.matching_date_formats(["31/12/1997", "01/02/1997"]) == ["%d/%m/%Y"]
    assert checks.matching_date_formats(["12/31/1997"]) == ["%m/%d/%Y"]
    assert checks.matching_date_formats(["1997-12-31"], current="%d/%m/%Y") == [None]


def test_sql_literal_doubles_quotes() -> None:
    assert checks.sql_literal("O'Brien") == "'O''Brien'"


# --- issue 12: repeated headers ------------------------------------------------------------------


def test_header_names_are_read_as_written(tmp_path) -> None:
    from clvmodel.checks import duplicate_header_message, header_names

    path = tmp_path / "t.csv"
    path.write_text("customer_id,T,T\n1,2,3\n", encoding="utf-8")
    assert header_names(path) == ["customer_id", "T", "T"]
    assert duplicate_header_message(path, header_names(path)) == (
        f"{path}: column 'T' appears twice in the header (columns 2 and 3); a reader would use one and ignore the "
        "other: rename or remove one of them in the export"
    )
    assert duplicate_header_message(path, ["a", "b", "T_1", "T"]) is None
    assert header_names(tmp_path / "missing.csv") is None
