"""The encrypted copy and every file operation on it (create, open, write, move, delete)."""
