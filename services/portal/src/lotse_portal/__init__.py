"""The Lotse portal."""
