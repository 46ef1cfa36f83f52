"""Hook implementations of the Offline Add-on (placeholder; wired in its own issue)."""

from __future__ import annotations

from hookspecs import HostServices, hookimpl


class OfflineAddon:
    """The object the ``psr.addons`` entry point names."""

    def __init__(self) -> None:
        self._host: HostServices | None = None

    @hookimpl
    def on_addon_enabled(self, host: HostServices) -> None:
        self._host = host

    @hookimpl
    def on_addon_disabled(self) -> None:
        self._host = None


addon = OfflineAddon()
