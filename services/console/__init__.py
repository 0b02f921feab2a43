"""The web console: a person's view of their workspaces, served as HTML pages.

It is a client of the gateway's public API like any other (`clients.gateway`), acting
with the signed-in person's own token, so it can do nothing the API does not let that
person do: it reads no database and calls no service directly.
"""
