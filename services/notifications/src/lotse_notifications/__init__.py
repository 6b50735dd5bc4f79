"""Lotse notifications: contact read model, message templates in six languages, and delivery by
email, webhook and in-app inbox, exactly once in effect."""
