"""Atrium's services; each owns one PostgreSQL schema and imports only `contracts` and `shared`."""
