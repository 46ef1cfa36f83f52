"""One synchronisation run against a server: engine, HTTP transport, prefetch, result."""
