"""Field types that several services validate the same way."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, Field, HttpUrl, UrlConstraints

NAME_MAX_LENGTH = 100
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
"""Categories of the characters a name may not hold once trimmed (Cs: a lone surrogate,
which a JSON body can spell as an escape, but no UTF-8 text, nor the database, holds)."""


def _visible_name(value: str) -> str:
    name = value.strip()
    if any(unicodedata.category(char) in _INVISIBLE for char in name):
        msg = "must not contain control characters"
        raise ValueError(msg)
    if not name:
        msg = "must have at least one visible character"
        raise ValueError(msg)
    if len(name) > NAME_MAX_LENGTH:
        msg = f"must be at most {NAME_MAX_LENGTH} characters after trimming"
        raise ValueError(msg)
    return name


def _character_class(codes: Iterable[int]) -> str:
    """The characters as the ranges of a regular expression's class, each one a `\\uXXXX`
    escape, which JavaScript, Python and Rust read alike."""
    ranges: list[list[int]] = []
    for code in sorted(codes):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(
        f"\\u{first:04x}" if first == last else f"\\u{first:04x}-\\u{last:04x}"
        for first, last in ranges
    )


def _name_pattern() -> str:
    """What `_visible_name` accepts, as a JSON Schema `pattern`: trimmable whitespace
    around 1 to 100 characters of which none is invisible and the first and last are
    not whitespace. The pattern spells out the Basic Multilingual Plane only (the
    invisible characters beyond it are a handful of format characters, which the
    service refuses all the same), less the surrogates, which a regular expression
    read as Unicode cannot name."""
    plane = [chr(code) for code in range(0x10000) if not 0xD800 <= code <= 0xDFFF]
    trimmed = {ord(char) for char in plane if char.isspace()}
    invisible = {ord(char) for char in plane if unicodedata.category(char) in _INVISIBLE}
    space, hidden = _character_class(trimmed), _character_class(invisible)
    edge = _character_class(trimmed | invisible)
    return f"^[{space}]*[^{edge}](?:[^{hidden}]{{0,{NAME_MAX_LENGTH - 2}}}[^{edge}])?[{space}]*$"


NAME_PATTERN = _name_pattern()

DisplayName = Annotated[
    str,
    Field(
        description="1 to 100 visible characters after trimming; no control characters.",
        json_schema_extra={"pattern": NAME_PATTERN, "minLength": 1},
    ),
    AfterValidator(_visible_name),
]

HttpsUrl = Annotated[
    HttpUrl,
    UrlConstraints(allowed_schemes=["https"], max_length=2048),
    Field(description="An https URL."),
]
