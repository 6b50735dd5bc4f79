"""lotse_cli."""
