"""The API key format, the same for apikeys (which makes and stores keys) and the
gateway (which verifies them).

A key is `atr_` + 32 random base62 characters + a 6-character base62 CRC32 checksum
of what precedes it, as GitHub's tokens are: a typo or a truncated key is refused
before any lookup, and secret scanners can match the format. 32 base62 characters hold
190 bits of randomness, so a key is stored as an HMAC-SHA256 under a server pepper
(`ATRIUM_APIKEY_PEPPER`) rather than a slow password hash: the HMAC cannot be turned
back into a key, and without the pepper not even checked against a guess.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import zlib

PREFIX = "atr_"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
DISPLAY_PREFIX_LENGTH = len(PREFIX) + 4
"""What a list shows of a key's beginning (`atr_AbCd`), with its last four characters."""
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_BASE62_SET = frozenset(_BASE62)


def new_key() -> str:
    body = PREFIX + "".join(secrets.choice(_BASE62) for _ in range(RANDOM_LENGTH))
    return body + checksum(body)


def checksum(body: str) -> str:
    """CRC32 of `body` in base62, six characters (62**6 > 2**32)."""
    value = zlib.crc32(body.encode("ascii"))
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        digits.append(_BASE62[digit])
    return "".join(reversed(digits))


def well_formed(key: str) -> bool:
    """The key has the format and its checksum matches: worth looking up. Cheap, and
    needs no secret."""
    if len(key) != KEY_LENGTH or not key.startswith(PREFIX):
        return False
    rest = key[len(PREFIX) :]
    if not _BASE62_SET.issuperset(rest):
        return False
    body, written = key[:-CHECKSUM_LENGTH], key[-CHECKSUM_LENGTH:]
    return hmac.compare_digest(checksum(body), written)


def key_hash(key: str, pepper: str) -> str:
    """What is stored and looked up: HMAC-SHA256 of the key under the pepper, in hex."""
    return hmac.new(pepper.encode(), key.encode("ascii"), hashlib.sha256).hexdigest()


def same_hash(stored: str, computed: str) -> bool:
    return hmac.compare_digest(stored, computed)


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]


def last4(key: str) -> str:
    return key[-4:]
