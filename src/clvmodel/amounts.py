"""Amounts as exports write them: ``$1,554.58``, ``1.554,58 €``, ``(12.50)``, ``-€3,00``.

``data.amount_format`` says how to read an amount column written as text:

* ``auto`` (the default): amounts that read as plain numbers (``1554.58``, ``-3``) are taken as
  they are, at no cost. Only when some do not (``bad_amount`` of the first count pass) are the
  others' shapes (digits, separators) examined: the decimal mark and the thousands separator are
  taken from them when every value fits one reading (``1,554.58`` and ``12.50`` say decimal
  point, ``1.554,58`` and ``3,00`` decimal comma); values that fit two formats with different
  results (``1,554`` alone: 1554 or 1.554) are an error asking for ``data.amount_format``; a
  column mixing ``1,554.58`` and ``1.554,58`` is an error too.
* ``plain``: amounts must be plain numbers (``not a number`` otherwise).
* a mapping (:class:`clvmodel.config.AmountFormat`): ``decimal_mark`` (``.`` or ``,``),
  ``thousands_separator`` (``,``, ``.``, ``'``, a blank, or empty for none; default the other
  mark), ``currency_symbols`` (default: any currency sign, ``$ € £ ¥ ₹ ...``, and a three-letter
  code such as ``USD``, before or after the number) and ``parentheses_negative`` (``(12.50)`` is
  -12.50; default true).

A value is read as: an optional ``(`` ... ``)``, a sign, a currency, a sign (``€-3``), the number
(digits in groups of three between thousands separators, then the decimal mark and digits), a
currency, a trailing ``-`` (SAP-style exports). A negative value (sign or parentheses) then meets
``data.negative_amounts`` as any refund does. Every row whose text was cleaned is counted by kind
(:data:`KINDS`) in :class:`clvmodel.io.LoadReport`.

The SQL here is DuckDB's; every setting reaches it through :func:`clvmodel.sqltext.literal`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from clvmodel.errors import ClvError
from clvmodel.sqltext import literal

__all__ = ["KINDS", "Format", "resolve", "detect", "parts_sql", "shape_sql", "value_sql", "kinds_sql", "CORE_LIMIT",
           "PARTS"]

#: What cleaning can do to a row's amount text, as counted in the load report.
KINDS = ("currency_symbol", "thousands_separator", "decimal_comma", "parentheses", "trailing_minus")
#: The longest number (digits and separators) read: 30 characters, far above any amount.
CORE_LIMIT = 30
# Default currency: any Unicode currency sign (one or more: "R$" has a letter, list it yourself),
# or a three-letter upper-case code (USD, EUR).
_ANY_CURRENCY = r"\p{Sc}+|[A-Z]{3}"
_FIELDS = ("open", "sign", "cur1", "sign2", "core", "cur2", "minus", "close")
_SEPARATORS = (",", ".", "'", " ")
#: The column :func:`clvmodel.io.load_transactions` stores an amount's parts in (:func:`parts_sql`).
PARTS = "__clv_amount_parts"


@dataclass(frozen=True)
class Format:
    """A resolved amount format: decimal mark, thousands separator (``""``: none), currency, parentheses."""

    decimal: str = "."
    thousands: str = ","
    currency: tuple[str, ...] | None = None  # None: any currency sign or three-letter code
    parentheses: bool = True

    def describe(self) -> str:
        """``decimal ',' thousands '.'``: how the report names it."""
        thousands = repr(self.thousands) if self.thousands else "none"
        return f"decimal mark {self.decimal!r}, thousands separator {thousands}"

    @property
    def plain_first(self) -> bool:
        """A plain number reads the same in this format (decimal point, no ``.`` thousands)."""
        return self.decimal == "." and self.thousands != "."


def resolve(setting: Any) -> Format | str:
    """``auto``/``plain``, or the :class:`Format` of a config mapping (:class:`clvmodel.config.AmountFormat`)."""
    if setting is None or isinstance(setting, str):
        return setting or "auto"
    decimal = setting.decimal_mark
    thousands = setting.thousands_separator
    if thousands is None:
        thousands = "," if decimal == "." else "."
    return Format(decimal, thousands, tuple(setting.currency_symbols) if setting.currency_symbols is not None else None,
                  setting.parentheses_negative)


def _pattern(fmt: Format | None) -> str:
    """The regular expression (RE2) splitting an amount into :data:`_FIELDS`."""
    if fmt is None or fmt.currency is None:
        currency = _ANY_CURRENCY
    else:
        currency = "|".join(re.escape(c) for c in sorted(fmt.currency, key=len, reverse=True) if c) or "(?!)"
    # The number: a digit, then digits and separators, ending in a digit (blanks only inside).
    number = r"\d[\d.,' ]*\d|\d" if fmt is None or fmt.thousands == " " else r"\d[\d.,']*\d|\d"
    return (rf"^(\()?\s*([-+]?)\s*({currency})?\s*([-+]?)\s*({number})\s*({currency})?\s*(-?)\s*(\))?$")


def _parts_sql(text: str, fmt: Format | None) -> str:
    fields = "[" + ", ".join(literal(f) for f in _FIELDS) + "]"
    return f"regexp_extract({text}, {literal(_pattern(fmt))}, {fields})"


def parts_sql(text: str, fmt: Format | None) -> str:
    """SQL for the parts of an amount (a STRUCT of :data:`_FIELDS`) of the trimmed text ``text``.

    ``NULL`` for a plain number when it reads the same in ``fmt`` (``None``: detection), so the
    regular expression runs only on the others. :func:`clvmodel.io.load_transactions` computes it
    once per row, into a table, and :func:`value_sql` and :func:`kinds_sql` read its fields.
    """
    if fmt is None or fmt.plain_first:
        return f"CASE WHEN TRY_CAST({text} AS DOUBLE) IS NULL THEN {_parts_sql(text, fmt)} END"
    return _parts_sql(text, fmt)


def shape_sql(text: str, parts: str) -> str:
    """SQL for the shape of an amount's number (digits as ``d``), ``''`` when no number is found.

    What :func:`detect` reads: a column's distinct shapes are few (``d,ddd.dd``, ``dd,dd``).
    ``parts`` is :func:`parts_sql` with ``fmt=None`` (NULL for a plain number, whose text is its number).
    """
    return (f"regexp_replace(CASE WHEN {parts} IS NULL THEN regexp_replace({text}, '^[-+]', '') "
            f"ELSE {parts}.core END, '[0-9]', 'd', 'g')")


def _grammar(decimal: str, thousands: str) -> str:
    d, t = re.escape(decimal), re.escape(thousands)
    grouped = rf"\d{{1,3}}({t}\d{{3}})+" if thousands else r"(?!)"
    return rf"^(({grouped})|\d+)({d}\d+)?$"


def _fits(shape: str, decimal: str, thousands: str) -> bool:
    return len(shape) <= CORE_LIMIT and re.fullmatch(_grammar(decimal, thousands), shape.replace("d", "0")) is not None


def _reading(shape: str, decimal: str) -> int:
    """Where the decimal mark is in ``shape`` under a format (-1: none): what a format changes."""
    return shape.rfind(decimal)


_CANDIDATES = tuple((d, t) for d in (".", ",") for t in ("", *_SEPARATORS) if t != d)


def detect(shapes: list[tuple[str, int, str, bool]], column: str, rows: int) -> Format | None:
    """The format every shape fits (``None`` when the odd values hold no number at all).

    ``shapes``: ``(shape, rows, example, plain)`` for the values that are not plain numbers, and
    for plain ones (``plain`` true) holding a ``.`` or a blank. Plain values only narrow the
    choice (``12.50`` says decimal point); ``1.554`` read plainly never makes a column
    ambiguous, it stays 1.554 unless other values say decimal comma. A shape no format reads
    (``d,dd,d``) is left out: its rows stay "not a number".

    Raises
    ------
    ClvError
        Values that are not plain numbers and read differently under the formats left
        (``1,554`` alone: 1554 or 1.554), or a column whose values need two formats
        (``1,554.58`` beside ``1.554,58``).
    """
    counts: dict[str, int] = {}
    examples: dict[str, str] = {}
    plain: dict[str, bool] = {}
    for shape, n, example, is_plain in shapes:
        if not shape:
            continue
        counts[shape] = counts.get(shape, 0) + n
        if not is_plain or shape not in examples:
            examples[shape] = example
        plain[shape] = plain.get(shape, True) and is_plain
    fitting = {s: {c for c in _CANDIDATES if _fits(s, *c)} for s in counts}
    fitting = {s: c for s, c in fitting.items() if c}
    if not any(not plain[s] for s in fitting):
        return None
    common = set(_CANDIDATES)
    for candidates in fitting.values():
        common &= candidates
    if not common:
        point = next((s for s, c in fitting.items() if all(d == "." for d, _ in c)), None)
        comma = next((s for s, c in fitting.items() if all(d == "," for d, _ in c)), None)
        pair = (point, comma) if point and comma else tuple(sorted(fitting, key=lambda s: -counts[s])[:2])
        raise ClvError(
            f"column {column!r} mixes amount formats: {examples[pair[0]]!r} and {examples[pair[1]]!r} cannot be read "
            "with one decimal mark and thousands separator; re-export the column in one format, or set "
            "data.amount_format to the one meant (the other rows are then refused)"
        )

    def ambiguous(shape: str) -> bool:
        return not plain[shape] and len({_reading(shape, d) for d, _ in common}) > 1

    # Every format left reads each shape alike, or the values are ambiguous (1,554 alone).
    unclear = sorted((s for s in fitting if ambiguous(s)), key=lambda s: -counts[s])
    if unclear:
        _ambiguous(column, examples[unclear[0]], sum(counts[s] for s in unclear), rows)
    decimal = "." if any(d == "." for d, _ in common) else ","
    used = {ch for s in fitting if not plain[s] for ch in s if ch != "d"}
    choices = [t for d, t in sorted(common) if d == decimal]
    partner = "," if decimal == "." else "."
    thousands = next((t for t in choices if t in used), partner if partner in choices else choices[0])
    return Format(decimal, thousands)


def _ambiguous(column: str, example: str, many: int, rows: int) -> None:
    found = re.search(r"\d[\d.,' ]*\d", example)
    core = found.group(0) if found else example
    sep = "," if "," in core else "."
    whole, fraction = core.replace(sep, ""), core.replace(sep, ".")
    readings = {".": whole if sep == "," else fraction, ",": fraction if sep == "," else whole}
    raise ClvError(
        f"amounts in column {column!r} are ambiguous: {many:,} of {rows:,} rows look like {example!r}, a thousands "
        f"separator or a decimal {'comma' if sep == ',' else 'point'}; set data.amount_format: {{decimal_mark: '.'}} "
        f"({core} is {readings['.']}) or {{decimal_mark: ','}} ({core} is {readings[',']})"
    )


def value_sql(text: str, parts: str, fmt: Format) -> str:
    """SQL for the amount (DOUBLE) of the trimmed text ``text`` under ``fmt``; NULL when it is not one.

    ``parts`` is the column holding :func:`parts_sql` of ``text`` (computed once per row). With a
    decimal point (:attr:`Format.plain_first`) a plain number is cast as it is (its parts are NULL).
    """
    m = parts
    core = f"{m}.core"
    number = core
    if fmt.thousands:
        number = f"replace({number}, {literal(fmt.thousands)}, '')"
    if fmt.decimal != ".":
        number = f"replace({number}, {literal(fmt.decimal)}, '.')"
    paired = f"(({m}.open = '') = ({m}.close = ''))"
    allowed = paired if fmt.parentheses else f"({m}.open = '' AND {m}.close = '')"
    one_sign = (f"((({m}.sign <> '')::INT + ({m}.sign2 <> '')::INT + ({m}.minus <> '')::INT "
                f"+ ({m}.open <> '')::INT) <= 1)")
    negative = f"({m}.sign = '-' OR {m}.sign2 = '-' OR {m}.minus = '-' OR {m}.open = '(')"
    grammar = f"regexp_matches({core}, {literal(_grammar(fmt.decimal, fmt.thousands))})"
    cleaned = (
        f"CASE WHEN {core} <> '' AND length({core}) <= {CORE_LIMIT} AND {allowed} AND {one_sign} AND {grammar} "
        f"THEN CASE WHEN {negative} THEN -1 ELSE 1 END * TRY_CAST({number} AS DOUBLE) END"
    )
    if fmt.plain_first:
        return f"CASE WHEN {m} IS NULL THEN TRY_CAST({text} AS DOUBLE) ELSE {cleaned} END"
    return cleaned


def kinds_sql(parts: str, fmt: Format) -> dict[str, str]:
    """SQL flags (BOOLEAN) of each cleaning kind of :data:`KINDS`, from the ``parts`` column (NULL: not cleaned)."""
    m = parts
    return {
        "currency_symbol": f"coalesce({m}.cur1 <> '' OR {m}.cur2 <> '', false)",
        "thousands_separator": f"coalesce(contains({m}.core, {literal(fmt.thousands)}), false)" if fmt.thousands
        else "FALSE",
        "decimal_comma": f"coalesce(contains({m}.core, ','), false)" if fmt.decimal == "," else "FALSE",
        "parentheses": f"coalesce({m}.open = '(', false)",
        "trailing_minus": f"coalesce({m}.minus = '-', false)",
    }
