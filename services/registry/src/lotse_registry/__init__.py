"""lotse_registry."""
