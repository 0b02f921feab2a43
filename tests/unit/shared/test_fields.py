"""Display names and image URLs are validated the same way everywhere."""

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.fields import DisplayName, HttpsUrl


class Named(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: DisplayName
    image_url: HttpsUrl | None = None


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("Acme", "Acme"),
        ("  Acme  ", "Acme"),
        ("Ünïcødé 工作区", "Ünïcødé 工作区"),
        ("a" * 100, "a" * 100),
    ],
)
def test_a_name_is_trimmed_and_kept(given: str, kept: str) -> None:
    assert Named(name=given).name == kept


@pytest.mark.parametrize(
    "name",
    ["", "   ", "a" * 101, "new\nline", "tab\there", "nul\x00", "rtl\u202eoverride", "zw\u200bsp"],
)
def test_a_name_without_visible_characters_or_with_control_characters_is_refused(
    name: str,
) -> None:
    with pytest.raises(ValidationError):
        Named(name=name)


def test_only_https_image_urls_are_accepted() -> None:
    named = Named.model_validate({"name": "x", "image_url": "https://cdn.example.com/a.png"})
    assert str(named.image_url) == "https://cdn.example.com/a.png"
    for url in ("http://cdn.example.com/a.png", "ftp://x/y", "javascript:alert(1)", "a.png"):
        with pytest.raises(ValidationError):
            Named.model_validate({"name": "x", "image_url": url})
