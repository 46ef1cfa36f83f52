"""The host core: discovered add-ons, their on/off state and settings, and their commands.

Switching an add-on on or off, or changing its settings, is written to the settings file at
once and, in a running host (after :meth:`Host.start`), takes effect without a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hookspecs import HostCommand, HostServices
from reference_host.addons import AddonInfo, HookCaller, discover
from reference_host.clipboard import Clipboard, ClipboardUnavailable
from reference_host.config import HostConfig, load_config, save_config
from reference_host.services import Console, one_shot_command_text, services_for
from reference_host.settings import effective_settings, with_change

log = logging.getLogger("psr.host")

BUILTIN_GROUPS = frozenset({"addons", "settings", "login"})


class HostError(Exception):
    """A host operation the user asked for is refused; the message says why and what to do."""


@dataclass(frozen=True)
class AddonStatus:
    """An add-on as ``addons list`` shows it."""

    info: AddonInfo
    enabled: bool

    @property
    def state(self) -> str:
        """``enabled``, ``disabled`` or ``refused: why``."""
        if self.info.refused:
            return f"refused: {self.info.refused}"
        return "enabled" if self.enabled else "disabled"


class Host:
    """One host process: its settings, its add-ons and the hooks it calls on them."""

    def __init__(
        self, config_dir: Path, console: Console, addons: list[AddonInfo] | None = None
    ) -> None:
        self.config_dir = config_dir
        self.console = console
        self.hooks = HookCaller()
        self._lock = threading.RLock()
        self._addons = {a.addon_id: a for a in (discover() if addons is None else addons)}
        self._commands: dict[str, list[HostCommand]] = {}
        self._running = False
        self._in_shell = False
        self.clipboard: Clipboard | None = None
        """The clipboard of the interactive shell, once there is one."""
        self.config = load_config(config_dir)
        if self._remember_new_addons(self.config):
            save_config(config_dir, self.config)

    # -- settings file --------------------------------------------------------------------

    def _remember_new_addons(self, config: HostConfig) -> bool:
        new = [a for a in self._usable() if a.addon_id not in config.addons]
        for info in new:
            config.entry(info.addon_id)  # enabled by default when first discovered
        return bool(new)

    def _reload(self) -> HostConfig:
        """The settings file as it is now (another psr-client may have changed it)."""
        config = load_config(self.config_dir)
        self._remember_new_addons(config)
        return config

    def _store(self, config: HostConfig) -> None:
        save_config(self.config_dir, config)
        self.config = config

    # -- add-ons --------------------------------------------------------------------------

    def _usable(self) -> list[AddonInfo]:
        return [a for a in self._addons.values() if not a.refused]

    def addon(self, addon_id: str) -> AddonInfo:
        """A discovered add-on by id, or :class:`HostError` listing the known ids."""
        info = self._addons.get(addon_id)
        if info is None:
            known = ", ".join(sorted(self._addons)) or "none installed"
            raise HostError(f"no add-on {addon_id!r} (known: {known})")
        return info

    def statuses(self) -> list[AddonStatus]:
        """Every discovered add-on with its state, sorted by id."""
        with self._lock:
            return [
                AddonStatus(info, self._switched_on(info.addon_id))
                for info in sorted(self._addons.values(), key=lambda i: i.addon_id)
            ]

    def is_enabled(self, addon_id: str) -> bool:
        """Whether an add-on is usable and switched on."""
        info = self._addons.get(addon_id)
        return bool(info and not info.refused and self._switched_on(addon_id))

    def _switched_on(self, addon_id: str) -> bool:
        entry = self.config.addons.get(addon_id)
        return entry.enabled if entry is not None else True

    def enabled_ids(self) -> list[str]:
        """Ids of the usable, switched-on add-ons."""
        return sorted(a.addon_id for a in self._usable() if self.is_enabled(a.addon_id))

    def enabled_offering(self, hook: str) -> list[str]:
        """Ids of the switched-on add-ons whose manifest says they implement ``hook``."""
        return [
            a.addon_id
            for a in self._usable()
            if self.is_enabled(a.addon_id)
            and a.manifest is not None
            and hook in a.manifest.get("hooks", ())
        ]

    def load(self) -> None:
        """Register every enabled add-on and collect its commands, without starting it (enough
        for ``addons``/``settings`` and for building the command line)."""
        with self._lock:
            for addon_id in self.enabled_ids():
                if addon_id not in self.hooks.registered():
                    self._activate(addon_id)

    def start(self) -> None:
        """Load the enabled add-ons and call their ``on_addon_enabled``: the host is running
        and from now on switching add-ons and changing settings take effect at once."""
        with self._lock:
            self.load()
            self._running = True
            for addon_id in self.hooks.registered():
                self._enable_hook(addon_id)

    def shutdown(self) -> None:
        """Call ``on_addon_disabled`` on every started add-on (they end their background work
        there) and unregister them. The stored on/off state is not changed."""
        with self._lock:
            for addon_id in self.hooks.registered():
                self._deactivate(addon_id)
            self._running = False
        self.console.close()

    def set_enabled(self, addon_id: str, enabled: bool) -> None:
        """Switch an add-on on or off, stored at once; in a running host immediately active."""
        with self._lock:
            info = self.addon(addon_id)
            if info.refused and enabled:
                raise HostError(f"add-on {addon_id!r} cannot be enabled: {info.refused}")
            config = self._reload()
            config.entry(addon_id).enabled = enabled
            self._store(config)
            active = addon_id in self.hooks.registered()
            if enabled and not active:
                self._activate(addon_id)
            elif not enabled and active:
                self._deactivate(addon_id)

    def _activate(self, addon_id: str) -> None:
        info = self._addons[addon_id]
        try:
            self.hooks.register(addon_id, info.plugin)
        except Exception as exc:
            log.error("add-on %r cannot be registered: %s", addon_id, exc)
            return
        self._commands[addon_id] = self._collect_commands(addon_id)
        if self._running:
            self._enable_hook(addon_id)

    def _enable_hook(self, addon_id: str) -> None:
        self.hooks.call_one(addon_id, "on_addon_enabled", host=self.services_for(addon_id))

    def services_for(self, addon_id: str) -> HostServices:
        """The host services as ``addon_id`` sees them."""
        return services_for(
            addon_id, self.console, self.settings, self.command_text, self.copy_to_clipboard
        )

    def copy_to_clipboard(self, text: str) -> str | None:
        """Put a secret on the shell's clipboard for an add-on (contract 1.2); the sentence
        for the user, or None when there is no clipboard (no shell, or no tool works)."""
        clipboard = self.clipboard
        if clipboard is None:
            return None
        try:
            clipboard.copy(text)
        except ClipboardUnavailable as exc:
            log.info("an add-on's copy to the clipboard failed: %s", exc)
            return None
        return f"copied to the clipboard; it is cleared in {clipboard.clear_after:g} s"

    # -- where the user types commands ----------------------------------------------------

    def enter_shell(self) -> None:
        """The user types commands in the interactive shell from now on (``login``)."""
        self._in_shell = True

    def command_text(self, group: str, name: str) -> str:
        """How the user types ``group name`` where they are: ``offline create`` in the shell,
        ``psr-client offline create`` on the command line."""
        if self._in_shell:
            return " ".join(part for part in (group, name) if part)
        return one_shot_command_text(group, name)

    def switched_off_owner(self, group: str) -> AddonStatus | None:
        """The installed add-on that a command group unknown to the host belongs to while it
        is switched off or refused (its commands are then not registered). Found by its id:
        a disabled add-on is never asked for its commands."""
        info = self._addons.get(group)
        if info is None or self.is_enabled(group):
            return None
        return AddonStatus(info, self._switched_on(group))

    def _deactivate(self, addon_id: str) -> None:
        if self._running:
            self.hooks.call_one(addon_id, "on_addon_disabled")
        self.hooks.unregister(addon_id)
        self._commands.pop(addon_id, None)

    def _collect_commands(self, addon_id: str) -> list[HostCommand]:
        answer = self.hooks.call_one(addon_id, "register_commands")
        commands: list[HostCommand] = []
        taken = {(c.group, c.name) for cmds in self._commands.values() for c in cmds}
        for command in answer or []:
            if not isinstance(command, HostCommand):
                log.warning("add-on %r returned a command that is not a HostCommand", addon_id)
            elif command.group in BUILTIN_GROUPS:
                log.warning(
                    "add-on %r: command group %r is the host's own; ignored",
                    addon_id,
                    command.group,
                )
            elif (command.group, command.name) in taken:
                log.warning(
                    "add-on %r: command %s %s exists already; ignored",
                    addon_id,
                    command.group,
                    command.name,
                )
            else:
                taken.add((command.group, command.name))
                commands.append(command)
        return commands

    def commands(self) -> list[tuple[str, HostCommand]]:
        """The commands of the active add-ons, as (add-on id, command)."""
        with self._lock:
            return [
                (addon_id, command)
                for addon_id, cmds in sorted(self._commands.items())
                for command in cmds
            ]

    # -- add-on settings ------------------------------------------------------------------

    def _ask_addon(
        self,
        addon_id: str,
        manifest: Mapping[str, Any],
        stored: Mapping[str, Any],
        updated: Mapping[str, Any],
    ) -> None:
        """``on_settings_changing`` of a loaded add-on (also in a one-shot command, where it
        is not started); its refusal becomes a :class:`HostError` and nothing is stored."""
        if addon_id not in self.hooks.registered():
            return  # switched off: nobody to ask; it reads its settings when switched on
        current = effective_settings(manifest, stored)
        proposed = effective_settings(manifest, updated)
        if current == proposed:
            return
        refusal = self.hooks.call_one(
            addon_id, "on_settings_changing", addon_id=addon_id, current=current, proposed=proposed
        )
        if isinstance(refusal, str) and refusal:
            raise HostError(refusal)

    # Readers below take no lock: add-ons call them from their threads, possibly while the
    # UI thread holds the host lock and waits for that add-on's hook (a deadlock otherwise).
    # ``self.config`` is only ever replaced whole (see ``_store``), never changed in place.

    def stored_settings(self, addon_id: str) -> Mapping[str, Any]:
        """The settings the user changed (the rest are the manifest's defaults)."""
        entry = self.config.addons.get(addon_id)
        return MappingProxyType(dict(entry.settings) if entry is not None else {})

    def settings(self, addon_id: str) -> Mapping[str, Any]:
        """An add-on's current settings (defaults overlaid with the stored values)."""
        info = self._addons.get(addon_id)
        if info is None or info.manifest is None:
            return MappingProxyType({})
        return MappingProxyType(effective_settings(info.manifest, self.stored_settings(addon_id)))

    def set_setting(self, addon_id: str, key: str, raw_value: Any) -> Mapping[str, Any]:
        """Validate one setting, let the add-on accept it (``on_settings_changing``, which may
        move files first), store it; a running host then calls ``on_settings_changed``.
        Raises :class:`reference_host.settings.SettingsError` naming the field, or
        :class:`HostError` with the add-on's refusal; the old value stays either way."""
        info = self.addon(addon_id)
        if info.manifest is None:
            raise HostError(f"add-on {addon_id!r} has no valid manifest: {info.refused}")
        with self._lock:
            config = self._reload()
            entry = config.entry(addon_id)
            updated = with_change(info.manifest, entry.settings, key, raw_value)
            self._ask_addon(addon_id, info.manifest, entry.settings, updated)
            entry.settings = updated
            self._store(config)
            current = self.settings(addon_id)
            if self._running:
                self.hooks.call("on_settings_changed", addon_id=addon_id, settings=current)
        return current
