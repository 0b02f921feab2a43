"""What an asset's properties may hold, kind by kind."""

from __future__ import annotations

import json

import pytest

from contracts.events.assets import AssetKind
from services.assets.domain import (
    MAX_PROPERTIES_BYTES,
    InvalidPropertiesError,
    checked_properties,
)


@pytest.mark.parametrize("tag", ["en", "pt-BR", "zh-Hant-TW", "es-419", "sl-rozaj", "de-1996"])
def test_a_voice_takes_bcp47_language_tags(tag: str) -> None:
    assert checked_properties(AssetKind.VOICE, {"language": tag}) == {"language": tag}


@pytest.mark.parametrize("tag", ["english", "e", "en_US", "en-", "-en", "en-US-x"])
def test_a_voice_refuses_what_is_no_language_tag(tag: str) -> None:
    with pytest.raises(InvalidPropertiesError) as refused:
        checked_properties(AssetKind.VOICE, {"language": tag})
    assert [error["field"] for error in refused.value.errors or []] == ["properties.language"]


def test_fields_a_kind_does_not_know_are_kept_as_they_are() -> None:
    properties = {"aspect_ratio": "9:16", "notes": {"draft": True, "tags": ["a", 1, None]}}
    assert checked_properties(AssetKind.TEMPLATE, properties) == properties


def test_properties_may_take_16_kib_and_no_more() -> None:
    overhead = len(json.dumps({"blob": ""}, separators=(",", ":")))
    fits = {"blob": "é" * ((MAX_PROPERTIES_BYTES - overhead) // 2)}
    assert checked_properties(AssetKind.VOICE, fits) == fits

    with pytest.raises(InvalidPropertiesError) as refused:
        checked_properties(AssetKind.VOICE, {"blob": "x" * (MAX_PROPERTIES_BYTES - overhead + 1)})
    assert [error["field"] for error in refused.value.errors or []] == ["properties"]


def test_every_broken_rule_is_named() -> None:
    with pytest.raises(InvalidPropertiesError) as refused:
        checked_properties(
            AssetKind.BRAND_KIT,
            {"colors": ["#12345", "#ABCDEF"], "logo_url": "ftp://example.com/x", "k\x00": 1},
        )
    fields = {error["field"] for error in refused.value.errors or []}
    assert fields == {"properties.colors.0", "properties.logo_url", "properties.k\x00"}
