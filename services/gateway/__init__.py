"""gateway: the one public entry; routes each request to the service that owns it."""
