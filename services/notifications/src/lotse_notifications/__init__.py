"""lotse_notifications."""
