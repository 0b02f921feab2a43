"""Clients of Atrium's public HTTP API: the `atrium` command line and the web console
speak to the gateway through `clients.gateway` only, with the caller's own token, so
they can do nothing the API does not let that caller do."""
