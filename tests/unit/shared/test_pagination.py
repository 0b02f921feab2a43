"""Cursors are read back in their list's shape, and a cursor that is not one is a 422."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.pagination import (
    CursorShape,
    Instant,
    InvalidCursorError,
    Moment,
    decode_cursor,
    encode_cursor,
)

PAGES: CursorShape[tuple[datetime, uuid.UUID]] = CursorShape(tuple[Moment, uuid.UUID])


def cursor_of(position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def test_a_cursor_the_api_gave_out_reads_back_as_its_position() -> None:
    position = (datetime(2026, 12, 1, 12, 30, tzinfo=UTC), uuid.uuid4())

    assert decode_cursor(encode_cursor(position, shape=PAGES), shape=PAGES) == position


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00+14:00",  # before the first time UTC can say
        "9999-12-31T23:59:59-14:00",  # after the last
        "2026-12-01T12:30:00",  # no zone
    ],
)
def test_a_cursor_time_that_is_no_time_in_utc_is_refused(moment: str) -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor_of([moment, str(uuid.uuid4())]), shape=PAGES)


INSTANTS: TypeAdapter[datetime] = TypeAdapter(Instant)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_query_bound_that_is_no_time_in_utc_is_refused(moment: str) -> None:
    with pytest.raises(ValidationError):
        INSTANTS.validate_python(moment)


def test_a_query_bound_without_a_zone_is_in_utc() -> None:
    assert INSTANTS.validate_python("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert INSTANTS.validate_python("2026-12-01T12:00:00+02:00") == datetime(
        2026, 12, 1, 10, tzinfo=UTC
    )
