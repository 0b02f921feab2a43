"""apikeys' settings: the shared ones; the pepper (`ATRIUM_APIKEY_PEPPER`) is required."""

from shared.idempotency import ResponseSeal
from shared.settings import Settings


class ApikeysSettings(Settings):
    def response_seal(self) -> ResponseSeal:
        """Seals the answers kept for retried creations and rotations, which hold a key's
        secret: under a key derived from the pepper, for this purpose only."""
        return ResponseSeal(self.apikey_pepper, purpose="apikeys new keys")
