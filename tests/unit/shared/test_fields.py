"""Names, free text, emails and image URLs are validated the same way everywhere."""

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.fields import DisplayName, Email, HttpsUrl, PlainText, canonical_email


class Named(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: DisplayName
    image_url: HttpsUrl | None = None


class Noted(BaseModel):
    note: PlainText
    email: Email | None = None


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("Acme", "Acme"),
        ("  Acme  ", "Acme"),
        ("Ünïcødé 工作区", "Ünïcødé 工作区"),
        ("a" * 100, "a" * 100),
        ("e\u0301te\u0301", "e\u0301te\u0301"),
        ("한글\u3164팀", "한글\u3164팀"),
        ("🚀", "🚀"),
        ("!", "!"),
        ("Acme \U000f0000", "Acme \U000f0000"),
        ("\uf8ff Studio", "\uf8ff Studio"),
    ],
)
def test_a_name_is_trimmed_and_kept(given: str, kept: str) -> None:
    assert Named(name=given).name == kept


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "a" * 101,
        "new\nline",
        "tab\there",
        "nul\x00",
        "rtl\u202eoverride",
        "zw\u200bsp",
        "\u3164",
        "\u3164 \u3164",
        "\u2800",
        "\u0301\u0300",
        "\ue000",
        "\U000f0000\U0010fffd",
        "\u115f\u1160",
        "\uffa0",
        "\u034f",
        "\ufe0f",
        "\U000e0041",
        "\ud800",
        "Acme\udfff",
    ],
)
def test_a_name_without_visible_characters_or_with_control_characters_is_refused(
    name: str,
) -> None:
    with pytest.raises(ValidationError):
        Named(name=name)


@pytest.mark.parametrize("text", ["a\x00b", "\ud800", "order \udc00 7"])
def test_text_postgresql_cannot_store_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        Noted(note=text)


def test_other_text_is_kept_as_it_is() -> None:
    assert Noted(note=" order\t7 ✓ ").note == " order\t7 ✓ "


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("Kate@Example.COM", "kate@example.com"),
        ("  kate@example.com ", "kate@example.com"),
        ("kate@b\u00fccher.example", "kate@xn--bcher-kva.example"),
        ("kate@XN--BCHER-KVA.example", "kate@xn--bcher-kva.example"),
        ("KATE@B\u00dcCHER.EXAMPLE", "kate@xn--bcher-kva.example"),
        ("\u00dcnal@example.com", "\u00fcnal@example.com"),
        ("\uff4bate@example.com", "\uff4bate@example.com"),
    ],
)
def test_an_email_is_compared_in_one_canonical_form(given: str, canonical: str) -> None:
    assert canonical_email(given) == canonical
    assert Noted(note="x", email=given).email == canonical


def test_the_kelvin_sign_and_a_fullwidth_k_do_not_stand_in_for_k() -> None:
    with pytest.raises(ValueError, match="normalisation"):
        canonical_email("\u212aate@example.com")
    with pytest.raises(ValueError, match="normalisation"):
        canonical_email("kate@\u212aexample.com")
    assert canonical_email("\uff4bate@example.com") != canonical_email("kate@example.com")


def test_an_address_under_test_is_taken_and_one_that_cannot_receive_mail_is_not() -> None:
    """`.test` is what staging identity providers issue; `.invalid` and `localhost` name
    no mailbox anywhere."""
    assert canonical_email("Kate@Staging.Test") == "kate@staging.test"
    for nowhere in ("kate@mail.invalid", "kate@localhost"):
        with pytest.raises(ValueError, match="not a valid email address"):
            canonical_email(nowhere)


@pytest.mark.parametrize(
    "email",
    [
        "not-an-email",
        "a@b",
        "@example.com",
        "a@",
        "a\x00b@example.com",
        "\ud800@example.com",
        "e\u0301lodie@example.com",
        "\u212aate@example.com",
    ],
)
def test_an_email_that_cannot_be_compared_safely_is_refused(email: str) -> None:
    with pytest.raises(ValidationError):
        Noted(note="x", email=email)


def test_only_https_image_urls_are_accepted() -> None:
    named = Named.model_validate({"name": "x", "image_url": "https://cdn.example.com/a.png"})
    assert str(named.image_url) == "https://cdn.example.com/a.png"
    for url in ("http://cdn.example.com/a.png", "ftp://x/y", "javascript:alert(1)", "a.png"):
        with pytest.raises(ValidationError):
            Named.model_validate({"name": "x", "image_url": url})


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@cdn.example.com/a.png",
        "https://user@cdn.example.com/a.png",
        "https://:secret@cdn.example.com/a.png",
        "https://localhost/a.png",
        "https://localhost./a.png",
        "https://api.localhost/a.png",
        "https://127.0.0.1/a.png",
        "https://2130706433/a.png",
        "https://0x7f.1/a.png",
        "https://10.1.2.3/a.png",
        "https://172.31.255.255/a.png",
        "https://192.168.0.10/a.png",
        "https://169.254.169.254/a.png",
        "https://100.64.0.1/a.png",
        "https://0.0.0.0/a.png",
        "https://[::1]/a.png",
        "https://[::]/a.png",
        "https://[fc00::1]/a.png",
        "https://[fdff::1]/a.png",
        "https://[fe80::1]/a.png",
        "https://[::ffff:10.0.0.1]/a.png",
        "https://metadata.google.internal/a.png",
        "https://INTERNAL/a.png",
        "https://printer.local/a.png",
        "https://router.home.arpa/a.png",
    ],
)
def test_an_image_url_with_credentials_or_on_a_private_host_is_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        Named.model_validate({"name": "x", "image_url": url})


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.com/a.png",
        "https://8.8.8.8/a.png",
        "https://[2606:4700::1111]/a.png",
        "https://images.internal-cdn.example/a.png",
        "https://local.example.com/a.png",
    ],
)
def test_an_image_url_on_a_public_host_is_kept(url: str) -> None:
    assert Named.model_validate({"name": "x", "image_url": url}).image_url is not None
