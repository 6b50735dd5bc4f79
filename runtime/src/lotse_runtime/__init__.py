"""Mechanism shared by the Lotse services, and nothing else: no domain logic lives here.

- ``settings``: the base of each service's one settings class.
- ``structured_logging``: JSON (or console) logs with tenant, event id, correlation id and trace id.
- ``tracing``: OpenTelemetry spans of requests, database calls, webhooks and events, one trace end to end.
- ``kafka``: the broker connection (Tansu-safe defaults, SASL when configured).
- ``consumer``: validate, process with bounded retries, dead-letter with the reason, then commit.
- ``mongo``: the database client and transactions.
- ``inbox``: processed event ids with a unique index, so every effect happens once.
"""
