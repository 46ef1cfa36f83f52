"""Reference host client (psr-client)."""
