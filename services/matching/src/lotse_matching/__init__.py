"""lotse_matching."""
