"""RFC 3339 timestamps at the edges: leap seconds, years 0000/9999, and the timestamp operator.

The references here are built on `datetime` (naive, so no offset arithmetic can overflow), with
instants before year 0001 shifted by 400 years (146097 days: the Gregorian cycle repeats exactly).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.operators import OPERATORS, OperatorConfig, OperatorTools
from gateway.operators.base import Operator
from gateway.strictjson import (
    FIRST_FORMATTED_US,
    LAST_FORMATTED_US,
    US_PER_DAY,
    civil_from_days,
    days_from_civil,
    format_rfc3339_us,
    parse_rfc3339_us,
)
from gateway.useragent import default_user_agent_parser

_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
_CYCLE_DAYS = 146_097  # days in 400 Gregorian years
_DATETIME_MIN_US = (datetime(1, 1, 1) - _NAIVE_EPOCH) // _ONE_US
_OUTPUT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z\Z")
UNIT_US = {"minute": 60_000_000, "hour": 3_600_000_000, "day": US_PER_DAY}
UNIT_TAIL = {"minute": ":00Z", "hour": ":00:00Z", "day": "T00:00:00Z"}


def reference_us(text: str) -> int | None:
    """Epoch µs of a shape-checked RFC 3339 text via naive datetime; leap seconds per the spec."""
    local, zone = text[:19], text[19:]
    fraction = ""
    if zone.startswith("."):
        fraction = re.match(r"\.(\d+)", zone).group(1)  # type: ignore[union-attr]
        zone = zone[1 + len(fraction) :]
    leap = local[17:19] == "60"
    try:
        moment = datetime.fromisoformat(local[:17] + "59" if leap else local)
    except ValueError:
        return None
    offset = 0 if zone in "Zz" else (int(zone[1:3]) * 60 + int(zone[4:6])) * 60_000_000
    utc_us = (moment - _NAIVE_EPOCH) // _ONE_US - (offset if zone[:1] == "+" else -offset)
    if leap:
        return utc_us + 999_999 if utc_us // 1_000_000 % 86_400 == 86_399 else None
    return utc_us + int((fraction + "000000")[:6])


def reference_format(epoch_us: int) -> str:
    """datetime's form of an instant, clamped to years 0000-9999 as documented."""
    clamped = min(max(epoch_us, FIRST_FORMATTED_US), LAST_FORMATTED_US)
    cycles = 0 if clamped >= _DATETIME_MIN_US else 1
    moment = _NAIVE_EPOCH + timedelta(microseconds=clamped + cycles * _CYCLE_DAYS * US_PER_DAY)
    return f"{moment.year - 400 * cycles:04d}" + moment.isoformat()[4:] + "Z"


def build(unit: str) -> Operator:
    cls = OPERATORS["timestamp"]
    config: OperatorConfig = cls.config_model.model_validate({"op": "timestamp", "unit": unit})
    return cls(config, OperatorTools(lambda value: value, "k1", default_user_agent_parser))


LEAP_SECONDS = [
    ("2016-12-31T23:59:60Z", 1483228799999999),
    ("2016-12-31T23:59:60.5Z", 1483228799999999),
    ("2016-12-31t23:59:60.999999999z", 1483228799999999),
    ("2017-01-01T00:59:60+01:00", 1483228799999999),
    ("2016-12-31T18:59:60-05:00", 1483228799999999),
    ("2015-06-30T23:59:60Z", 1435708799999999),
    ("2026-11-26T23:59:60Z", 1795737599999999),  # any date: RFC 3339 cannot predict them
    ("9999-12-31T23:59:60Z", LAST_FORMATTED_US),
    ("0001-01-01T23:58:60+23:59", days_from_civil(1, 1, 1) * US_PER_DAY - 1),  # year 0 in UTC
    ("9999-12-31T00:00:60-23:59", LAST_FORMATTED_US),
]
NOT_LEAP_SECONDS = [
    "2016-12-31T12:00:60Z",
    "2016-12-31T23:58:60Z",
    "2016-12-31T23:59:60+01:00",  # 22:59:60 UTC
    "2016-12-31T23:59:61Z",
    "0001-01-01T23:59:60+23:59",  # 00:00:60 UTC
    "9999-12-31T23:59:60-23:59",  # 23:58:60 UTC
    "2016-12-32T23:59:60Z",
]


@pytest.mark.parametrize(("text", "expected"), LEAP_SECONDS)
def test_when_second_is_60_at_utc_2359_then_it_is_the_last_microsecond_of_that_minute(
    text: str, expected: int
) -> None:
    for _ in range(2):  # the second call meets the caches
        assert parse_rfc3339_us(text) == expected == reference_us(text)
    assert parse_rfc3339_us(text[:17] + "59Z") is not None  # remember the :59 prefix
    assert parse_rfc3339_us(text) == expected


@pytest.mark.parametrize("text", NOT_LEAP_SECONDS)
def test_when_second_60_is_not_at_utc_2359_then_the_timestamp_is_refused(text: str) -> None:
    assert parse_rfc3339_us(text) is None
    assert parse_rfc3339_us(text) is None


def test_when_a_leap_second_is_ordered_then_it_falls_between_its_neighbours() -> None:
    before = parse_rfc3339_us("2016-12-31T23:59:59.999998Z")
    leap = parse_rfc3339_us("2016-12-31T23:59:60.000001Z")
    after = parse_rfc3339_us("2017-01-01T00:00:00Z")
    assert before is not None and leap is not None and after is not None
    assert before < leap < after
    assert format_rfc3339_us(leap) == "2016-12-31T23:59:59.999999Z"


FORMATS = [
    (0, "1970-01-01T00:00:00Z"),
    (1, "1970-01-01T00:00:00.000001Z"),
    (-1, "1969-12-31T23:59:59.999999Z"),
    (951825600000000, "2000-02-29T12:00:00Z"),
    (parse_rfc3339_us("0001-01-01T00:30:00+01:00"), "0000-12-31T23:30:00Z"),
    (parse_rfc3339_us("0001-01-01T00:00:00+23:59"), "0000-12-31T00:01:00Z"),
    (parse_rfc3339_us("9999-12-31T23:59:59-01:00"), "9999-12-31T23:59:59.999999Z"),  # clamped
    (parse_rfc3339_us("9999-12-31T00:00:60.5-23:59"), "9999-12-31T23:59:59.999999Z"),
    (parse_rfc3339_us("9999-12-31T23:59:59.999999999-23:59"), "9999-12-31T23:59:59.999999Z"),
    (LAST_FORMATTED_US, "9999-12-31T23:59:59.999999Z"),
    (LAST_FORMATTED_US + 1, "9999-12-31T23:59:59.999999Z"),
    (FIRST_FORMATTED_US, "0000-01-01T00:00:00Z"),
    (FIRST_FORMATTED_US - 1, "0000-01-01T00:00:00Z"),
    (days_from_civil(0, 2, 29) * US_PER_DAY, "0000-02-29T00:00:00Z"),  # year 0 is a leap year
]


@pytest.mark.parametrize(("epoch_us", "expected"), FORMATS)
def test_when_an_instant_is_formatted_then_it_is_utc_rfc3339_within_years_0000_9999(
    epoch_us: int | None, expected: str
) -> None:
    assert epoch_us is not None
    assert format_rfc3339_us(epoch_us) == expected == reference_format(epoch_us)


@given(st.dates())
def test_when_a_date_is_counted_then_days_match_the_proleptic_gregorian_ordinal(day: date) -> None:
    days = days_from_civil(day.year, day.month, day.day)
    assert days == day.toordinal() - date(1970, 1, 1).toordinal()
    assert civil_from_days(days) == (day.year, day.month, day.day)
    assert civil_from_days(days - _CYCLE_DAYS) == (day.year - 400, day.month, day.day)


@given(st.integers(-(10**8), 10**8))
def test_when_days_go_to_a_date_and_back_then_nothing_is_lost(days: int) -> None:
    assert days_from_civil(*civil_from_days(days)) == days


def _zone(minutes: int) -> str:
    if minutes == 0:
        return "Z"
    sign = "+" if minutes > 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@st.composite
def valid_timestamps(draw: st.DrawFn) -> str:
    """Any text the validator accepts: years 0001-9999, any offset, 0-9 fraction digits, and
    leap seconds (23:59:60 in UTC, written in the drawn offset)."""
    offset = draw(st.integers(-(24 * 60 - 1), 24 * 60 - 1))
    zone = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00"])) if offset == 0 else _zone(offset)
    fraction = draw(st.sampled_from(["", "."]))
    fraction += draw(st.from_regex(r"[0-9]{1,9}", fullmatch=True)) if fraction else ""
    if draw(st.booleans()):
        local = draw(st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)))
        text = f"{local.year:04d}-{local.month:02d}-{local.day:02d}T{local.hour:02d}:"
        text += f"{local.minute:02d}:{local.second:02d}"
    else:  # a leap second: 23:59:60 UTC on any day, written in local time
        first, last = days_from_civil(0, 12, 31), days_from_civil(9999, 12, 31)
        utc_minute = draw(st.integers(first, last)) * 1440 + 1439
        days, minute = divmod(utc_minute + offset, 1440)
        year, month, day = civil_from_days(days)
        assume(1 <= year <= 9999)
        text = f"{year:04d}-{month:02d}-{day:02d}T{minute // 60:02d}:{minute % 60:02d}:60"
    return text.replace("T", draw(st.sampled_from("Tt"))) + fraction + zone


@settings(max_examples=300)
@given(valid_timestamps(), st.sampled_from(["minute", "hour", "day"]))
def test_when_any_accepted_timestamp_is_parsed_and_formatted_then_it_agrees_with_the_reference(
    text: str, unit: str
) -> None:
    epoch_us = parse_rfc3339_us(text)
    assert epoch_us is not None
    assert epoch_us == reference_us(text)
    formatted = format_rfc3339_us(epoch_us)
    assert formatted == reference_format(epoch_us)
    assert _OUTPUT.match(formatted)
    if FIRST_FORMATTED_US + 366 * US_PER_DAY <= epoch_us <= LAST_FORMATTED_US:  # years 0001-9999
        assert parse_rfc3339_us(formatted) == epoch_us
    coarse = build(unit).apply(text)
    assert isinstance(coarse, str)
    assert _OUTPUT.match(coarse) and coarse.endswith(UNIT_TAIL[unit])
    last_start = LAST_FORMATTED_US - LAST_FORMATTED_US % UNIT_US[unit]
    assert coarse == reference_format(min(epoch_us - epoch_us % UNIT_US[unit], last_start))


EXTREMES = [
    (
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:00Z",
        "9999-12-31T23:00:00Z",
        "9999-12-31T00:00:00Z",
    ),
    (
        "9999-12-31T00:00:60-23:59",
        "9999-12-31T23:59:00Z",
        "9999-12-31T23:00:00Z",
        "9999-12-31T00:00:00Z",
    ),
    (
        "0001-01-01T00:30:00+01:00",
        "0000-12-31T23:30:00Z",
        "0000-12-31T23:00:00Z",
        "0000-12-31T00:00:00Z",
    ),
    (
        "0001-01-01T00:00:00+23:59",
        "0000-12-31T00:01:00Z",
        "0000-12-31T00:00:00Z",
        "0000-12-31T00:00:00Z",
    ),
    (
        "2016-12-31T23:59:60Z",
        "2016-12-31T23:59:00Z",
        "2016-12-31T23:00:00Z",
        "2016-12-31T00:00:00Z",
    ),
    (
        "2017-01-01T00:59:60.5+01:00",
        "2016-12-31T23:59:00Z",
        "2016-12-31T23:00:00Z",
        "2016-12-31T00:00:00Z",
    ),
]


@pytest.mark.parametrize(("text", "minute", "hour", "day"), EXTREMES)
def test_when_an_extreme_timestamp_is_coarsened_then_the_output_is_a_valid_unit_start(
    text: str, minute: str, hour: str, day: str
) -> None:
    for unit, expected in (("minute", minute), ("hour", hour), ("day", day)):
        op = build(unit)
        assert op.apply(text) == expected
        assert op.apply(text) == expected  # the cached paths
