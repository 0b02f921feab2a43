"""Field types that every service validates the same way: free text, display names,
email addresses and image URLs."""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Iterable
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, HttpUrl, UrlConstraints

NAME_MAX_LENGTH = 100


def _storable(value: str) -> str:
    """PostgreSQL stores no NUL in text, and a lone surrogate (a JSON `\\ud800` escape) is
    not Unicode at all: both are the client's mistake, not a server error."""
    if "\x00" in value:
        msg = "must not contain NUL characters"
        raise ValueError(msg)
    try:
        value.encode()
    except UnicodeEncodeError as invalid:
        msg = "must not contain lone surrogates (it is not valid Unicode)"
        raise ValueError(msg) from invalid
    return value


PlainText = Annotated[str, AfterValidator(_storable)]
"""Any text a service stores: no NUL characters and no lone surrogates."""


_REFUSED_IN_NAMES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
"""Control and format characters (invisible, and some reorder or hide the text around
them), line and paragraph separators, and surrogates. Private-use characters (a font's
or a vendor's own glyphs: icons, logos) are kept as unassigned code points are: allowed
in a name, not counted as its visible characters. Listing their 137,468 code points in
`NAME_PATTERN` would make the pattern some hundred times slower to generate names from
for the property-based tools that read the document (hypothesis expands every range
of a class into its characters)."""

_BLANK_LETTERS = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"})
"""Letters and symbols that are drawn as nothing: the Hangul fillers and the blank
Braille pattern."""


def _is_visible(char: str) -> bool:
    """A letter, digit, punctuation mark or symbol that is drawn. Spaces, combining marks
    (they only decorate the character before them), variation selectors, private-use
    characters and unassigned code points do not count."""
    return unicodedata.category(char)[0] in "LNPS" and char not in _BLANK_LETTERS


def has_a_visible_character(text: str) -> bool:
    """What a name needs besides what `NAME_PATTERN` says: a regular expression says it
    only with a look-ahead, which JSON Schema validators' (Rust's among them) lack."""
    return any(_is_visible(char) for char in text)


def _visible_name(value: str) -> str:
    name = _storable(value).strip()
    if any(unicodedata.category(char) in _REFUSED_IN_NAMES for char in name):
        msg = "must not contain control, format, line-separator or surrogate characters"
        raise ValueError(msg)
    if not has_a_visible_character(name):
        msg = "must have at least one visible character"
        raise ValueError(msg)
    if len(name) > NAME_MAX_LENGTH:
        msg = f"must be at most {NAME_MAX_LENGTH} characters after trimming"
        raise ValueError(msg)
    return name


def _character_class(codes: Iterable[int]) -> str:
    """The characters as the ranges of a regular expression's class: those of the Basic
    Multilingual Plane as `\\uXXXX` escapes, those beyond it as themselves (no escape
    names them in both Python's and ECMA-262's syntax). Read as Unicode (ECMA-262's `u`
    flag, as JSON Schema asks), JavaScript, Python and Rust read it alike."""
    ranges: list[list[int]] = []
    for code in sorted(codes):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])

    def character(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    return "".join(
        character(first) if first == last else f"{character(first)}-{character(last)}"
        for first, last in ranges
    )


def _name_pattern() -> str:
    """What `_visible_name` accepts, as a JSON Schema `pattern`: trimmable whitespace
    around 1 to 100 characters of which none is invisible and the first and last are
    not whitespace. Every code point but the surrogates, which a regular expression read
    as Unicode cannot name (a string holding one is refused all the same)."""
    characters = [chr(code) for code in range(0x110000) if not 0xD800 <= code <= 0xDFFF]
    trimmed = {ord(char) for char in characters if char.isspace()}
    invisible = {
        ord(char) for char in characters if unicodedata.category(char) in _REFUSED_IN_NAMES
    }
    space, hidden = _character_class(trimmed), _character_class(invisible)
    edge = _character_class(trimmed | invisible)
    return f"^[{space}]*[^{edge}](?:[^{hidden}]{{0,{NAME_MAX_LENGTH - 2}}}[^{edge}])?[{space}]*$"


NAME_PATTERN = _name_pattern()

DisplayName = Annotated[
    str,
    Field(
        description="1 to 100 characters after trimming, at least one of them visible; no "
        "control or format characters.",
        json_schema_extra={"pattern": NAME_PATTERN, "minLength": 1},
    ),
    AfterValidator(_visible_name),
]


def canonical_email(address: str) -> str:
    """The form two addresses are compared in: the local part lower-cased, the domain
    IDNA-encoded (so its Unicode and its punycode spelling are one domain).

    The address must already be in Unicode normalisation form C. Normalising it here
    would make canonically equivalent but different-looking characters equal — the
    Kelvin sign (U+212A) would become `K`, then `k` — so that one mailbox could claim
    what was addressed to another; such an address is refused instead. Compatibility
    characters (a fullwidth `k`, U+FF4B) stay what they are and match only themselves."""
    value = _storable(address).strip()
    if unicodedata.normalize("NFC", value) != value:
        msg = (
            "must be in Unicode normalisation form C (NFC); characters such as the Kelvin "
            "sign (U+212A) would otherwise read as other letters"
        )
        raise ValueError(msg)
    try:
        # `test_environment`: addresses under `.test` (RFC 6761) are taken, as staging
        # identity providers issue them; the other special-use names are still refused.
        parsed = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as invalid:
        msg = f"is not a valid email address: {invalid}"
        raise ValueError(msg) from invalid
    local = unicodedata.normalize("NFC", parsed.local_part.lower())
    return f"{local}@{parsed.ascii_domain.lower()}"


Email = Annotated[
    str,
    Field(
        description="An email address, kept in the form addresses are compared in: the "
        "local part lower-cased, the domain IDNA-encoded.",
        json_schema_extra={"format": "email"},
    ),
    AfterValidator(canonical_email),
]


_INTERNAL_DOMAINS = frozenset(
    {"localhost", "local", "localdomain", "internal", "intranet", "lan", "home", "corp", "private"}
)
"""Names that only mean something inside a network (RFC 6761, RFC 6762, ICANN's
private-use `.internal`, and the private names most often found in the wild)."""
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable, and so is any IPv4 address an IPv6 one carries."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    embedded = [address.ipv4_mapped, address.sixtofour]
    if address.teredo is not None:
        embedded.append(address.teredo[1])
    if address in _NAT64:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return all(inner is None or _is_public_address(inner) for inner in embedded)


def _is_public_host(host: str) -> bool:
    name = host.rstrip(".").lower()
    try:
        return _is_public_address(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        pass
    labels = name.split(".")
    if len(labels) == 1 or labels[-1] in _INTERNAL_DOMAINS:
        return False
    return labels[-2:] != ["home", "arpa"]


def _public_image(url: HttpUrl) -> HttpUrl:
    """An image other people's browsers (and any service that fetches it) load: no
    credentials in it, and not on a host that only means something inside a network."""
    if url.username is not None or url.password is not None:
        msg = "must not carry a user name or password"
        raise ValueError(msg)
    if not _is_public_host(url.host or ""):
        msg = (
            "must be on a public host: not localhost, a loopback, private, link-local or "
            "otherwise non-global address, nor an internal name"
        )
        raise ValueError(msg)
    return url


HttpsUrl = Annotated[
    HttpUrl,
    UrlConstraints(allowed_schemes=["https"], max_length=2048),
    AfterValidator(_public_image),
    Field(description="An https URL on a public host, without user name or password."),
]
