"""Spark SQL text: quoted identifiers, string literals, and strftime formats as Spark date patterns."""

from __future__ import annotations

import re

from clvmodel.errors import ClvError
from clvmodel.sqltext import spark_identifier, spark_literal

# Spark's quoting lives beside DuckDB's in clvmodel.sqltext (one module, two dialects); these
# names stay for the Spark modules that import them.
_quote = spark_identifier
_sql_str = spark_literal


# strftime directive -> Spark pattern (fixed width, variable width). Variable width accepts "1" and
# "01" like DuckDB's strptime; fixed width is needed when two numbers touch ("%Y%m%d").
_DIRECTIVES: dict[str, tuple[str, str]] = {
    "Y": ("yyyy", "yyyy"),
    "m": ("MM", "M"),
    "d": ("dd", "d"),
    "H": ("HH", "H"),
    "I": ("hh", "h"),
    "M": ("mm", "m"),
    "S": ("ss", "s"),
    "j": ("DDD", "D"),
    "b": ("MMM", "MMM"),
    "B": ("MMMM", "MMMM"),
    "p": ("a", "a"),
}
_NUMERIC = set("YmdHIMSj")
# Literal characters that mean nothing in a Spark pattern; any other (letters, [ ] # { }) is quoted.
_PLAIN = set(" -/:.,;_|+")


def strftime_to_spark(date_format: str) -> str:
    """Translate a strftime format (``data.date_format``) into a Spark datetime pattern.

    Parameters
    ----------
    date_format
        E.g. ``"%Y%m%d"`` or ``"%d/%m/%Y %H:%M"``.

    Returns
    -------
    str
        E.g. ``"yyyyMMdd"`` or ``"d/M/yyyy H:m"``; letters outside directives are quoted.

    Raises
    ------
    ClvError
        A directive Spark cannot read the way DuckDB does (``%y``: Spark puts two-digit years in
        2000-2099, DuckDB in 1969-2068; locale or time-zone directives).
    """
    tokens = re.findall(r"%.|[^%]", date_format)
    if any(t == "%" for t in tokens):
        raise ClvError(f"data.date_format {date_format!r} ends with a lone '%'; write '%%' for a percent sign")
    out: list[str] = []
    for i, token in enumerate(tokens):
        if not token.startswith("%"):
            out.append(token if token in _PLAIN else "''" if token == "'" else f"'{token}'")
            continue
        code = token[1]
        if code == "%":
            out.append("%")
        elif code == "y":
            raise ClvError(
                f"data.date_format {date_format!r}: %y (two-digit year) reads differently on Spark (2000-2099) "
                "and DuckDB (1969-2068); use a four-digit year (%Y)"
            )
        elif code not in _DIRECTIVES:
            raise ClvError(
                f"data.date_format {date_format!r}: %{code} is not supported by the Spark engine; "
                f"use {', '.join('%' + c for c in _DIRECTIVES)}"
            )
        else:
            touching = any(
                0 <= j < len(tokens) and tokens[j][:1] == "%" and tokens[j][1:] in _NUMERIC for j in (i - 1, i + 1)
            )
            fixed, variable = _DIRECTIVES[code]
            out.append(fixed if touching and code in _NUMERIC else variable)
    return "".join(out)
