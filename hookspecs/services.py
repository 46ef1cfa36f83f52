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
        the task's progress display. The ``text`` of the ending call is what the status bar
        keeps showing afterwards, so give the outcome there ("Up to date"), not the running
        text ("Synchronising…")."""
        ...

    def notify(self, title: str, text: str, level: NotifyLevel = "info") -> None:
        """Show a completion hint or a message to the user.

        A host may show ``info`` on a status line that the next message replaces (the
        reference host's shell does), and ``warning``/``error`` where they stay visible."""
        ...

    def addon_settings(self, addon_id: str) -> Mapping[str, Any]:
        """The add-on's current settings, already validated against its manifest."""
        ...

    def logger(self, addon_id: str) -> logging.Logger:
        """The host's logger for this add-on. Never log secrets or record contents."""
        ...

    def command_text(self, group: str, name: str) -> str:
        """How the user types the contributed command ``group name`` where they are now:
        ``"offline create"`` inside the reference host's shell,
        ``"psr-client offline create"`` on the command line (a GUI host may name its menu
        entry). Use it in hints that tell the user what to run.

        Added in contract 1.1: a 1.0 host lacks it, so call it through
        ``getattr(host, "command_text", None)`` and fall back to a text of your own."""
        ...

    def copy_to_clipboard(self, text: str) -> str | None:
        """Put ``text`` (a secret: a password the user asked to copy) on the clipboard the
        way the host's own "copy" does, cleared again after a while; returns the sentence
        that tells the user what happened ("copied to the clipboard; it is cleared in
        30 s"), or ``None`` when the host has no clipboard here (then offer another way,
        such as showing the value on request). Never log ``text``.

        Added in contract 1.2: older hosts lack it, so call it through
        ``getattr(host, "copy_to_clipboard", None)``."""
        ...
