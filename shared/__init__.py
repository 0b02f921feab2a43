"""Plumbing every Atrium service uses: settings, database, outbox, inbox, errors, logging."""
