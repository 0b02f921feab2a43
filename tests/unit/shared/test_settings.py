"""Each service logs in as itself, on the server the administrative URL names, and runs
only on secrets of its own."""

import secrets
import ssl

import pytest

from shared.settings import PUBLISHED_SECRETS, InsecureSettingsError, ServiceName, Settings


def test_service_logins_are_derived_from_the_administrative_url() -> None:
    settings = Settings(database_url="postgresql://admin:secret@db.internal:6543/atrium")
    assert (
        settings.database_url_for(ServiceName.BILLING)
        == "postgresql://atrium_billing:atrium_billing@db.internal:6543/atrium"
    )


def test_an_explicit_service_url_wins() -> None:
    settings = Settings(
        database_url="postgresql://admin:secret@db:5432/atrium",
        identity_database_url="postgresql://id:pw@other:5432/ids?ssl=require",
    )
    assert (
        settings.database_url_for(ServiceName.IDENTITY)
        == "postgresql://id:pw@other:5432/ids?ssl=require"
    )


def test_a_service_refuses_to_start_without_its_secrets() -> None:
    settings = Settings(
        internal_secret="", jwt_secret="", apikey_pepper="", gateway_kafka_password=""
    )

    with pytest.raises(InsecureSettingsError) as refused:
        settings.check_secrets(ServiceName.GATEWAY)

    message = str(refused.value)
    assert "gateway refuses to start" in message
    for variable in (
        "ATRIUM_INTERNAL_SECRET",
        "ATRIUM_JWT_SECRET",
        "ATRIUM_APIKEY_PEPPER",
        "ATRIUM_GATEWAY_KAFKA_PASSWORD",
    ):
        assert f"{variable} is not set" in message


@pytest.mark.parametrize("published", sorted(PUBLISHED_SECRETS))
def test_a_service_refuses_to_start_on_a_published_secret(published: str) -> None:
    settings = Settings(
        internal_secret=published,
        jwt_secret=secrets.token_urlsafe(),
        apikey_pepper=secrets.token_urlsafe(),
        gateway_kafka_password="k",
    )

    with pytest.raises(InsecureSettingsError, match="ATRIUM_INTERNAL_SECRET is a published"):
        settings.check_secrets(ServiceName.GATEWAY)


def test_a_service_starts_on_secrets_of_its_own() -> None:
    settings = Settings(
        internal_secret=secrets.token_urlsafe(),
        jwt_secret=secrets.token_urlsafe(),
        billing_kafka_password=secrets.token_urlsafe(),
    )

    settings.check_secrets(ServiceName.BILLING)


def test_each_service_reaches_kafka_as_its_own_principal() -> None:
    settings = Settings(billing_kafka_password="b-pw", identity_kafka_password="i-pw")

    billing = settings.kafka_for(ServiceName.BILLING).client_options()

    assert billing["security_protocol"] == "SASL_PLAINTEXT"
    assert billing["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (billing["sasl_plain_username"], billing["sasl_plain_password"]) == (
        "atrium_billing",
        "b-pw",
    )
    assert settings.kafka_for(ServiceName.IDENTITY).username == "atrium_identity"


def test_a_cluster_beyond_this_machine_is_reached_over_tls() -> None:
    settings = Settings(kafka_security_protocol="SASL_SSL", apikeys_kafka_password="pw")

    options = settings.kafka_for(ServiceName.APIKEYS).client_options()

    assert options["security_protocol"] == "SASL_SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
