"""Reference server (psr-server)."""
