"""The API key format: what is refused before any lookup, and how a key is stored."""

from __future__ import annotations

import re

from shared import api_keys


def test_a_new_key_has_the_documented_format_and_passes_its_own_check() -> None:
    key = api_keys.new_key()
    assert re.fullmatch(r"atr_[0-9A-Za-z]{32}[0-9A-Za-z]{6}", key)
    assert api_keys.well_formed(key)
    assert key[-6:] == api_keys.checksum(key[:-6])


def test_keys_do_not_repeat() -> None:
    assert len({api_keys.new_key() for _ in range(1000)}) == 1000


def test_a_typo_a_truncation_or_a_foreign_character_is_refused() -> None:
    key = api_keys.new_key()
    position = 10
    replacement = "A" if key[position] != "A" else "B"
    typo = key[:position] + replacement + key[position + 1 :]
    assert not api_keys.well_formed(typo)
    assert not api_keys.well_formed(key[:-1])
    assert not api_keys.well_formed(key + "0")
    assert not api_keys.well_formed("xtr_" + key[4:])
    assert not api_keys.well_formed(key[:-7] + "é" + key[-6:])
    assert not api_keys.well_formed("")


def test_the_stored_hash_depends_on_the_pepper_and_is_not_the_key() -> None:
    key = api_keys.new_key()
    stored = api_keys.key_hash(key, "pepper-one")
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert stored != api_keys.key_hash(key, "pepper-two")
    assert api_keys.same_hash(stored, api_keys.key_hash(key, "pepper-one"))
    assert key not in stored


def test_people_tell_keys_apart_by_their_prefix_and_last_four() -> None:
    key = api_keys.new_key()
    assert api_keys.display_prefix(key) == key[:8]
    assert api_keys.last4(key) == key[-4:]
