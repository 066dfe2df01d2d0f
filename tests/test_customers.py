"""Customer (RFM) tables: one-line refusals of bad rows and ids, clean and untidy ids alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvmodel.customers import validate_rfm
from clvmodel.errors import ClvError


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"customer_id": ["a", "a"], "frequency": [1, 2], "recency": [1.0, 2.0], "T": [3.0, 3.0]},
         "1 duplicated customer_id\\(s\\) \\(e.g. 'a'\\)"),
        ({"customer_id": ["a", "b"], "frequency": [1, 0], "recency": [5.0, 0.0], "T": [3.0, 3.0]},
         "^input: 1 of 2 rows have recency > T \\(a last purchase after the end of observation\\), e\\.g\\. customer 'a' "
         "with recency 5, T 3; recompute the table with clvmodel rfm, or pass the transactions instead$"),
        ({"customer_id": ["a"], "frequency": [-1], "recency": [1.0], "T": [3.0]},
         "1 of 1 rows have a negative frequency, e.g. customer 'a' with frequency -1; frequency counts repeat purchases"),
        ({"customer_id": ["a"], "frequency": [np.nan], "recency": [1.0], "T": [3.0]},
         "1 of 1 rows have a missing or non-numeric frequency \\(e.g. customer 'a': empty\\); fill in a number"),
        ({"customer_id": ["a", "b"], "frequency": [1, "x"], "recency": [1.0, 1.0], "T": [3.0, 3.0]},
         "1 of 2 rows have a missing or non-numeric frequency \\(e.g. customer 'b': 'x'\\)"),
        ({"customer_id": ["a"], "frequency": [1], "recency": [1.0], "T": [3.0], "monetary_value": [-2.0]},
         "1 of 1 rows have a negative monetary_value, e.g. customer 'a' with monetary_value -2; spend per repeat"),
        ({"customer_id": ["a"], "frequency": [1.5], "recency": [1.0], "T": [3.0]}, "non-integer frequency"),
        ({"customer_id": ["a"], "recency": [1.0], "T": [3.0]}, "missing RFM column\\(s\\) frequency"),
        ({"customer_id": ["a", None], "frequency": [1, 1], "recency": [1.0, 1.0], "T": [3.0, 3.0]},
         "1 of 2 rows have no customer_id \\(empty, NA, NaN or NULL; e.g. data row 2\\); fill in the ids or remove those rows"),
        ({"customer_id": [], "frequency": [], "recency": [], "T": []}, "no customers to score \\(a header but no rows\\)"),
    ],
)
def test_bad_rfm_rows(rows, message):
    with pytest.raises(ClvError, match=message):
        validate_rfm(pd.DataFrame(rows))


@pytest.mark.parametrize("dtype", [object, "str", "string"])
def test_clean_and_untidy_ids_give_the_same_table(dtype):
    """Ids that are already clean skip the strip; untidy ones are stripped: both paths agree with the rule."""
    ids = ["b", "a", "c 1", "10", "zoë"]  # a non-ASCII last letter: checked by Arrow's trim, kept as it is
    rows = pd.DataFrame({"customer_id": pd.Series(ids, dtype=dtype), "frequency": [1, 0, 2, 3, 0],
                         "recency": [1.0, 0.0, 2.0, 3.0, 0.0], "T": [4.0, 4.0, 4.0, 4.0, 4.0]})
    untidy = rows.assign(customer_id=pd.Series([" b", "a\t", "c 1", "10\u3000", "zoë"], dtype=dtype))
    for frame in (rows, untidy):
        before = frame.copy()
        out = validate_rfm(frame)
        assert out["customer_id"].dtype == object and out["customer_id"].tolist() == ids
        assert all(type(i) is str for i in out["customer_id"])
        assert out[["frequency", "recency", "T"]].dtypes.eq(float).all()
        pd.testing.assert_frame_equal(frame, before)  # the caller's frame is left as it was
    numbers = rows.assign(customer_id=[7, 3, 10, 1, 0])
    assert validate_rfm(numbers)["customer_id"].tolist() == ["7", "3", "10", "1", "0"]
    with pytest.raises(ClvError, match="1 of 5 rows have no customer_id \\(empty, NA, NaN or NULL; e.g. data row 2\\)"):
        validate_rfm(rows.assign(customer_id=pd.Series(["b", " \u3000", "c", "d", "e"], dtype=dtype)))


@pytest.mark.parametrize("dtype", [object, "str"])
@pytest.mark.parametrize(
    ("ids", "count", "example"),
    [
        (["a", "b", "b", "c"], 1, "b"),  # sorted, with a repeat: not strictly increasing
        (["c", "a", "b", "a", "c"], 2, "a"),  # unsorted
        (["a", "b ", " b", "c"], 1, "b"),  # equal once stripped
    ],
)
def test_duplicated_ids_sorted_or_not(dtype, ids, count, example):
    rows = pd.DataFrame({"customer_id": pd.Series(ids, dtype=dtype), "frequency": 0, "recency": 0.0, "T": 1.0})
    with pytest.raises(ClvError, match=f"^input: {count} duplicated customer_id\\(s\\) \\(e.g. '{example}'\\)"):
        validate_rfm(rows)
    validate_rfm(rows.assign(customer_id=pd.Series([f"{i}{j}" for j, i in enumerate(ids)], dtype=dtype)))


def test_rfm_rows_no_transaction_log_can_give():
    rows = pd.DataFrame({"customer_id": ["a", "b"], "frequency": [3, 10], "recency": [3.0, 2.0], "T": [10.0, 10.0]})
    validate_rfm(rows)  # without the time unit the table is taken as it is
    assert validate_rfm(rows, time_unit="week")["frequency"].tolist() == [3.0, 10.0]  # 10 days in 2 weeks: possible
    with pytest.raises(
        ClvError,
        match=r"^input: 1 of 2 rows have more repeat purchase days than days from the first to the last purchase "
        r"\(frequency > recency x 1\), e\.g\. customer 'b' with frequency 10, recency 2; frequency counts repeat "
        r"purchase days, not transactions: summarise the transactions with clvmodel rfm$",
    ):
        validate_rfm(rows, time_unit="day")


# --- issue 12: one missing-id rule, bounded spend -------------------------------------------------


@pytest.mark.parametrize("marker", ["NA", "NULL", "NaN", "nan", "N/A", "None", "null", " NA "])
def test_missing_id_markers_are_missing_as_in_transaction_logs(marker: str) -> None:
    frame = pd.DataFrame({"customer_id": ["a", marker], "frequency": [1, 1], "recency": [1.0, 1.0], "T": [3.0, 3.0]})
    with pytest.raises(ClvError, match=r"1 of 2 rows have no customer_id \(empty, NA, NaN or NULL; e\.g\. data row 2\)"):
        validate_rfm(frame)


def test_a_monetary_value_beyond_the_ceiling_is_refused() -> None:
    frame = pd.DataFrame({"customer_id": ["a", "b"], "frequency": [1, 1], "recency": [1.0, 1.0], "T": [3.0, 3.0],
                          "monetary_value": [1e300, 5.0]})
    with pytest.raises(ClvError, match=r"1 of 2 rows have a monetary_value above 1,000,000,000,000,000"):
        validate_rfm(frame)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, "inf"])
def test_non_finite_rfm_numbers_are_refused(value: object) -> None:
    # Already so before issue 12 (customers._as_float): kept as a guard for the REST path.
    frame = pd.DataFrame({"customer_id": ["a", "b"], "frequency": [1, 1], "recency": [1.0, 1.0], "T": [3.0, value]})
    with pytest.raises(ClvError, match=r"1 of 2 rows have a missing or non-numeric T"):
        validate_rfm(frame)
