"""swanwatch.values: the one reading of flags, days, instants, numbers and text in rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from swanwatch.values import (
    CONVERTERS,
    BadValue,
    day_of,
    float_or_zero,
    instant_of,
    int_or_zero,
    is_after,
    is_true,
    midnight,
    text_of,
    to_bool,
    to_date,
    to_datetime,
    to_int,
)

PARIS = timezone(timedelta(hours=2))


@pytest.mark.parametrize("value", [True, "yes", " Y ", "1", "on", "TRUE", "t", 1])
def test_flags_that_are_true(value: object) -> None:
    assert is_true(value) is True


@pytest.mark.parametrize("value", [False, None, "", "no", "0", "off", "maybe", 0, 2])
def test_flags_that_are_false(value: object) -> None:
    assert is_true(value) is False


def test_a_day_is_read_from_dates_datetimes_and_text_in_utc() -> None:
    assert day_of(date(2026, 3, 1)) == date(2026, 3, 1)
    assert day_of(datetime(2026, 3, 1, 23, 30)) == date(2026, 3, 1)  # naive: taken as UTC
    assert day_of(datetime(2026, 3, 2, 1, 0, tzinfo=PARIS)) == date(2026, 3, 1)
    assert day_of(" 2026-03-01T10:00:00Z ") == date(2026, 3, 1)
    assert day_of("") is None and day_of("  ") is None and day_of(None) is None
    assert day_of(20260301) is None
    with pytest.raises(ValueError):
        day_of("March 1st")


def test_an_instant_is_aware_utc() -> None:
    assert instant_of("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert instant_of("2026-03-01T12:00:00+02:00") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert instant_of(datetime(2026, 3, 1, 10)) == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert instant_of(date(2026, 3, 1)) == midnight(date(2026, 3, 1))
    assert instant_of(None) is None and instant_of(" ") is None and instant_of(3) is None
    with pytest.raises(ValueError):
        instant_of("yesterday")


def test_midnight_is_the_start_of_the_day_in_utc() -> None:
    assert midnight(date(2026, 3, 1)) == datetime(2026, 3, 1, tzinfo=UTC)


def test_numbers_default_to_zero_only_when_empty() -> None:
    assert int_or_zero(None) == 0 and int_or_zero("") == 0
    assert int_or_zero("3.0") == 3 and int_or_zero(7) == 7 and int_or_zero(2.9) == 2
    assert float_or_zero(None) == 0.0 and float_or_zero("") == 0.0
    assert float_or_zero("2.5") == 2.5 and float_or_zero(Decimal("1.25")) == 1.25
    with pytest.raises(ValueError):
        int_or_zero("many")
    with pytest.raises(ValueError):
        float_or_zero("n/a")


def test_text_is_stripped_and_none_is_empty() -> None:
    assert text_of("  Jane ") == "Jane" and text_of(None) == "" and text_of(42) == "42"


def test_strict_converters_refuse_what_is_not_their_type() -> None:
    assert to_int(Decimal("4")) == 4 and to_int(" 12 ") == 12
    assert to_bool("No") is False and to_bool("on") is True
    assert to_date("2026-03-01T10:00:00Z") == date(2026, 3, 1)
    assert to_datetime(date(2026, 3, 1)) == datetime(2026, 3, 1, tzinfo=UTC)
    for convert, value in [(to_int, True), (to_int, "1.5"), (to_bool, "maybe"), (to_date, "x")]:
        with pytest.raises(BadValue):
            convert(value)
    with pytest.raises(BadValue, match="finite"):
        CONVERTERS["float"]("nan")
    # Python's own literals are not an export's numbers: "36_600" is a bad value, not 36600.
    for strict, text in [(to_int, "1_000"), (CONVERTERS["float"], "36_600.5")]:
        with pytest.raises(BadValue, match="not"):
            strict(text)
    assert set(CONVERTERS) == {"int", "float", "str", "bool", "date", "datetime"}


def test_is_after_compares_days_by_day_and_naive_times_as_utc() -> None:
    cut = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert not is_after(date(2026, 3, 1), cut) and is_after(date(2026, 3, 2), cut)
    assert is_after(datetime(2026, 3, 1, 13), cut) and not is_after(datetime(2026, 3, 1, 11), cut)
    assert not is_after("2026-03-05", cut) and not is_after(None, cut)
