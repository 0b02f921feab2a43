"""Field types that several services validate the same way."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field, HttpUrl, UrlConstraints

NAME_MAX_LENGTH = 100


def _visible_name(value: str) -> str:
    name = value.strip()
    if any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in name):
        msg = "must not contain control characters"
        raise ValueError(msg)
    if not name:
        msg = "must have at least one visible character"
        raise ValueError(msg)
    if len(name) > NAME_MAX_LENGTH:
        msg = f"must be at most {NAME_MAX_LENGTH} characters after trimming"
        raise ValueError(msg)
    return name


DisplayName = Annotated[
    str,
    Field(description="1 to 100 visible characters after trimming; no control characters."),
    AfterValidator(_visible_name),
]

HttpsUrl = Annotated[
    HttpUrl,
    UrlConstraints(allowed_schemes=["https"], max_length=2048),
    Field(description="An https URL."),
]
