"""The services the host offers to its add-ons."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

NotifyLevel = Literal["info", "warning", "error"]


@runtime_checkable
class HostServices(Protocol):
    """What an add-on may call on the host. Every method is thread-safe and returns quickly."""

    def progress(self, task: str, done: int, total: int, text: str) -> None:
        """Show progress of ``task`` in the status bar and task-bar icon.

        ``total`` 0 means unknown; ``done == total`` (or a later call with ``total`` -1) ends
        the task's progress display."""
        ...

    def notify(self, title: str, text: str, level: NotifyLevel = "info") -> None:
        """Show a completion hint or a message to the user."""
        ...

    def addon_settings(self, addon_id: str) -> Mapping[str, Any]:
        """The add-on's current settings, already validated against its manifest."""
        ...

    def logger(self, addon_id: str) -> logging.Logger:
        """The host's logger for this add-on. Never log secrets or record contents."""
        ...
