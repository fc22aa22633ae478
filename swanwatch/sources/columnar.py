"""Records as columns (Arrow): typed exactly as the row path types them, at a fraction of
the cost, for sources that read millions of rows (usage).

The rule that keeps the two paths equal: a column is converted by its distinct values,
each through the same strict converter (:data:`swanwatch.values.CONVERTERS`) that the row
path applies cell by cell. A daily usage file holds 90 distinct dates in 9 million rows,
so the conversion costs next to nothing, and whatever the row path accepts or rejects,
this path does too (a value it rejects sends the file back to the row path, which says
which line is wrong).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from swanwatch.values import BadValue, day_of, to_str

if TYPE_CHECKING:
    import pyarrow as pa

#: Rows per Arrow table handed on from the row path (a file the fast path cannot take).
ROW_BATCH = 50_000


class NotColumnar(Exception):
    """A file the columnar path cannot take as it is; the row path reads it instead."""


def kept(stamp: object, until: datetime) -> bool:
    """Whether a row dated ``stamp`` is at or before ``until`` (an undated row is)."""
    if isinstance(stamp, datetime):
        return stamp <= until
    if isinstance(stamp, date):
        return stamp <= until.date()
    return True


def encode(column: Any) -> tuple[Any, list[object]]:
    """A column as (codes, distinct values): ``codes`` a numpy int64 array, -1 for null."""
    import numpy as np
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_null(column.type):
        return np.full(len(column), -1, dtype=np.int64), []
    encoded = column.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def convert(column: Any, converter: Callable[[object], object]) -> Any:
    """A text column typed by ``converter``, distinct value by distinct value; an empty
    cell of a non-text type reads as None. NotColumnar when a value does not convert."""
    import pyarrow as pa

    codes, distinct = encode(column)
    text = converter is to_str
    out: list[object] = []
    for value in distinct:
        if value is None or (value == "" and not text):
            out.append(None)
            continue
        try:
            out.append(converter(value))
        except BadValue as exc:
            raise NotColumnar(str(exc)) from exc
    try:
        typed = pa.array(out)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise NotColumnar(str(exc)) from exc
    return typed.take(pa.array(codes, mask=codes < 0))


def keep_mask(column: Any, until: datetime) -> Any:
    """A boolean numpy mask of the rows dated at or before ``until``."""
    import numpy as np

    codes, distinct = encode(column)
    keep = np.array([kept(v, until) for v in distinct] + [True], dtype=bool)
    return keep[codes]  # code -1 (null) reads the last entry: an undated row is kept


def newest_day(column: Any) -> date | None:
    """The newest calendar day among a column of dates, datetimes or ISO text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_date32(kind) or (pa.types.is_timestamp(kind) and kind.unit != "ns"):
        return day_of(pc.max(column).as_py())  # the day of the newest: the newest day
    _, distinct = encode(column)
    newest: date | None = None
    for value in distinct:
        try:
            day = day_of(value)
        except ValueError:
            continue
        if day is not None and (newest is None or day > newest):
            newest = day
    return newest


def table_of(rows: Sequence[Mapping[str, object]], fields: Iterable[str]) -> pa.Table:
    """Rows (as the row path made them) as one table of ``fields``; NotColumnar when a
    field's values do not make one Arrow type (JSON records of mixed kinds)."""
    import pyarrow as pa

    names = list(fields)
    if not names:
        return no_columns(len(rows))
    try:
        return pa.table({f: pa.array([row.get(f) for row in rows]) for f in names})
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise NotColumnar(str(exc)) from exc


def no_columns(rows: int) -> pa.Table:
    """A table of ``rows`` rows and no columns: records none of whose fields were asked for
    are still records (a read counts them, a reader sees each)."""
    import pyarrow as pa

    return pa.table([pa.nulls(rows)], names=["_"]).select([])


def native(column: Any, converter: Callable[[object], object]) -> Any:
    """``column`` typed by ``converter``: as it is when Arrow already holds that type (a
    Parquet column), else converted distinct value by distinct value (:func:`convert`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from swanwatch.values import to_bool, to_date, to_datetime, to_float, to_int

    kind = column.type
    if converter is to_float and pa.types.is_floating(kind):
        finite = pc.is_finite(column)
        if not pc.all(pc.or_kleene(finite, pc.is_null(column))).as_py():
            raise NotColumnar("a value that is not a finite number")
        return column.cast(pa.float64())
    same = (
        (converter is to_str and pa.types.is_string(kind))
        or (converter is to_int and pa.types.is_integer(kind))
        or (converter is to_date and pa.types.is_date32(kind))
        or (converter is to_bool and pa.types.is_boolean(kind))
        or (converter is to_datetime and pa.types.is_timestamp(kind) and kind.tz == "UTC")
    )
    if same:
        return column
    if converter is to_datetime and pa.types.is_string(kind):
        fast = _utc_stamps(column)
        if fast is not None:
            return fast
    return convert(column, converter)


#: The one ISO 8601 form of UTC instants that Arrow parses as Python does (exports' own).
_UTC_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def _utc_stamps(column: Any) -> Any:
    """A text column of ``YYYY-MM-DDTHH:MM:SSZ`` instants (empty: None) as UTC timestamps,
    parsed by Arrow; None when any value is in another form, or does not print back as it
    was written (Arrow reads 30 February as 2 March, Python refuses it): the caller then
    converts value by value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    empty = pc.equal(column, "")
    text = pc.if_else(empty, pa.scalar(None, pa.string()), column)
    try:
        parsed = pc.strptime(text, format=_UTC_STAMP, unit="s", error_is_null=True)
    except pa.ArrowInvalid:
        return None
    printed = pc.replace_substring(parsed.cast(pa.string()), " ", "T")  # strftime is slow
    printed = pc.binary_join_element_wise(printed, pa.scalar("Z"), "")
    same = pc.or_kleene(empty, pc.equal(printed, column))
    if not pc.all(pc.fill_null(same, False)).as_py():
        return None
    return parsed.cast(pa.timestamp("us", tz="UTC"))
