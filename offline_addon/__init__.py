"""The Offline Add-on: an encrypted, self-syncing local copy of server databases."""

__all__: list[str] = []
