"""Local runners for the embedded defaults: a private PostgreSQL cluster and a
single-node Apache Kafka, started as plain processes (no Docker needed)."""
