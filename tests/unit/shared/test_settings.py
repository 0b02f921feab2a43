"""Each service logs in as itself, on the server the administrative URL names."""

from shared.settings import ServiceName, Settings


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
