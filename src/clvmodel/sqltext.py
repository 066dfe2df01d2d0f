"""The one way a value reaches SQL text: quoted literals, quoted identifiers, dates and numbers.

Values from a file, a path, a config or a model document are hostile input (the model
document's checksum detects corruption, not tampering). Where DuckDB accepts a prepared
parameter (``con.execute(sql, [value])``: table functions such as ``read_csv(?)``, ``COPY ...
TO ?``, ``SET memory_limit = ?``) the caller passes one; where it does not (a ``CREATE VIEW``, a
query string built once and run by several callers, Spark SQL) the value goes through one of
these functions, and nothing else interpolates a value into SQL: ``tests/test_sqltext.py`` walks
the package's f-strings to hold that.

Two dialects, because their string literals differ:

* DuckDB (and standard SQL): a quote inside a literal is doubled, and a backslash is an ordinary
  character (:func:`literal`, :func:`identifier`);
* Spark SQL: a backslash escapes the next character inside a literal (``'\\''`` is a quote), so
  DuckDB's form of ``a\\'; DROP ...`` (``'a\\''; DROP ...'``) would end the literal after the
  quote and run the rest as SQL (:func:`spark_literal`, :func:`spark_identifier`, backticks).

Dates and numbers are written the same way on both engines.

This module imports nothing of clvmodel but :mod:`clvmodel.errors`, so every layer may use it.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers

from clvmodel.errors import ClvError

__all__ = ["literal", "identifier", "date_literal", "number", "spark_literal", "spark_identifier"]


def _text(value: object, what: str) -> str:
    """``value`` if it is a ``str`` without NUL (no engine keeps a NUL inside a literal intact)."""
    if not isinstance(value, str):
        raise TypeError(f"clvmodel bug: a SQL {what} must be built from a str, got {type(value).__name__}")
    if "\x00" in value:
        shown = value.replace("\x00", "\\0")[:60]
        raise ClvError(f"{what} {shown!r} holds a NUL character; remove it")
    return value


def _enclosed(value: object, what: str, quote: str) -> str:
    """``value`` between two ``quote`` characters, each ``quote`` inside doubled (SQL's own escape).

    The rule of a DuckDB literal (``'``), a DuckDB identifier (``"``) and a Spark identifier
    (backtick); a Spark literal escapes with backslashes instead (:func:`spark_literal`).
    """
    return quote + _text(value, what).replace(quote, quote * 2) + quote


def literal(text: str) -> str:
    """A DuckDB string literal: ``it's`` becomes ``'it''s'``.

    Parameters
    ----------
    text
        Any text without NUL: a path, a delimiter, a date format.

    Returns
    -------
    str
        The literal, quotes included; backslashes are kept as they are (DuckDB does not escape).

    Raises
    ------
    ClvError
        ``text`` holds a NUL character.
    TypeError
        ``text`` is not a ``str`` (a bug in the caller, not the user's input).
    """
    return _enclosed(text, "value", "'")


def identifier(name: str) -> str:
    """A DuckDB identifier in double quotes, a double quote inside doubled (a column name from a config).

    Raises
    ------
    ClvError
        ``name`` holds a NUL character.
    """
    return _enclosed(name, "column name", '"')


def spark_literal(text: str) -> str:
    r"""A Spark SQL string literal: backslash and quote escaped with a backslash.

    Spark's parser reads ``\`` as an escape inside a literal (unless
    ``spark.sql.parser.escapedStringLiterals`` is on, which clvmodel never sets), so ``\`` is
    written ``\\`` and ``'`` is written ``\'``; DuckDB's form leaves a backslash before a quote
    unescaped, and Spark would read that quote as text and the rest of the value as SQL.

    Raises
    ------
    ClvError
        ``text`` holds a NUL character.
    """
    return "'" + _text(text, "value").replace("\\", "\\\\").replace("'", "\\'") + "'"


def spark_identifier(name: str) -> str:
    """A Spark SQL identifier in backticks (names with blanks, dots or backticks work).

    Raises
    ------
    ClvError
        ``name`` holds a NUL character.
    """
    return _enclosed(name, "column name", "`")


def date_literal(value: dt.date) -> str:
    """``DATE 'YYYY-MM-DD'`` from a ``datetime.date`` (both engines).

    A ``datetime`` (or a pandas ``Timestamp``) is refused rather than truncated: its ``str``
    carries a time, and whether the caller meant its day or its instant is the caller's call.

    Raises
    ------
    TypeError
        ``value`` is not a plain ``datetime.date``.
    """
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise TypeError(f"clvmodel bug: a SQL date must be a datetime.date, got {type(value).__name__}")
    return f"DATE '{value.isoformat()}'"


def number(value: float | int) -> str:
    """A finite real number as SQL text: ``7``, ``0.01``, ``1e-05`` (both engines).

    Integers are written as integers; other reals as the shortest text that reads back as the
    same double (``repr`` of a Python float, so numpy scalars print as numbers too).

    Raises
    ------
    ClvError
        ``value`` is NaN or infinite (no SQL text means it).
    TypeError
        ``value`` is not a real number, or is a ``bool`` (a bug in the caller).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"clvmodel bug: a SQL number must be a real number, got {type(value).__name__}")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    as_float = float(value)
    if not math.isfinite(as_float):
        raise ClvError(f"{as_float!r} is not a finite number; use a finite value")
    return repr(as_float)
