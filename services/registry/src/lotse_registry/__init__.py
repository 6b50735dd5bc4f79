"""The Lotse registry: tenants, organisations, volunteers and needs, published as contract events.

Reads top-down: ``__main__`` (entry point) → ``app`` (lifespan: database, broker, consumers,
relay) → ``api`` (HTTP) and ``handlers`` (Kafka) → ``partner`` (partner command rules) and
``service`` (what each command does) → ``domain`` (pure rules) → ``store`` (tenant-scoped
persistence and the outbox).
"""
