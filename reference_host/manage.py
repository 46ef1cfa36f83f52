"""``addons list|enable|disable`` and ``settings show|set``: the host's settings screen."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from reference_host.host import Host, HostError
from reference_host.settings import SettingsError


def add_manage_parsers(subparsers: Any) -> None:
    """Add the ``addons`` and ``settings`` commands to ``subparsers``."""
    addons = subparsers.add_parser("addons", help="list add-ons, switch them on or off")
    acts = addons.add_subparsers(dest="addons_action", metavar="ACTION", required=True)
    acts.add_parser("list", help="installed add-ons with version and state")
    for verb in ("enable", "disable"):
        acts.add_parser(verb, help=f"{verb} an add-on").add_argument("name", metavar="NAME")

    settings = subparsers.add_parser("settings", help="show or change add-on settings")
    sacts = settings.add_subparsers(dest="settings_action", metavar="ACTION", required=True)
    show = sacts.add_parser("show", help="current settings (all add-ons, or one)")
    show.add_argument("addon", metavar="ADDON", nargs="?")
    change = sacts.add_parser("set", help="change one setting (validated by the manifest)")
    change.add_argument("addon", metavar="ADDON")
    change.add_argument("key", metavar="KEY")
    change.add_argument("value", metavar="VALUE")


def switched_off_text(host: Host, group: str) -> str | None:
    """Why the command group ``group``, unknown to the host, is missing when it belongs to an
    installed add-on that is switched off (or refused); ``None`` for any other word."""
    owner = host.switched_off_owner(group)
    if owner is None:
        return None
    addon_id = owner.info.addon_id
    if owner.info.refused:
        return (
            f"the command group {group!r} belongs to the add-on {addon_id!r}, which cannot "
            f"be loaded: {owner.info.refused}"
        )
    return (
        f"the command group {group!r} belongs to the add-on {addon_id!r}, which is switched "
        f"off; switch it on with `{host.command_text('addons', f'enable {addon_id}')}`"
    )


def _show_value(value: Any) -> str:
    return json.dumps(value)


def run_manage(host: Host, ns: argparse.Namespace, out: Callable[[str], None]) -> int:
    """Run a parsed ``addons``/``settings`` command; print refusals, return the exit code."""
    try:
        if ns.command == "addons":
            return _addons(host, ns, out)
        return _settings(host, ns, out)
    except (HostError, SettingsError) as exc:
        out(f"error: {exc}")
        return 2


def _addons(host: Host, ns: argparse.Namespace, out: Callable[[str], None]) -> int:
    if ns.addons_action == "list":
        statuses = host.statuses()
        if not statuses:
            out("no add-ons installed")
        for status in statuses:
            info = status.info
            out(f"{info.addon_id}\t{info.name}\t{info.version}\t{status.state}")
        return 0
    enabled = ns.addons_action == "enable"
    host.set_enabled(ns.name, enabled)
    out(f"add-on {ns.name} {'enabled' if enabled else 'disabled'}")
    return 0


def _settings(host: Host, ns: argparse.Namespace, out: Callable[[str], None]) -> int:
    if ns.settings_action == "set":
        current = host.set_setting(ns.addon, ns.key, ns.value)
        out(f"{ns.addon}.{ns.key} = {_show_value(current[ns.key])}")
        return 0
    ids = [ns.addon] if ns.addon else [s.info.addon_id for s in host.statuses()]
    for addon_id in ids:
        info = host.addon(addon_id)
        if info.manifest is None:
            out(f"{addon_id}: no settings ({info.refused})")
            continue
        stored = host.stored_settings(addon_id)
        for key, value in host.settings(addon_id).items():
            origin = "" if key in stored else "  (default)"
            out(f"{addon_id}.{key} = {_show_value(value)}{origin}")
    return 0
