"""The host settings file: client id, timer interval, per add-on on/off and settings.

One JSON file per installation (``host.json`` in the config folder), written atomically with
owner-only permissions because it names the installation's client id. Only settings the user
changed are stored; defaults come from each add-on's manifest, so that a new add-on version's
defaults apply to settings the user never touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import appdirs

CONFIG_FILE_NAME = "host.json"
DEFAULT_TIMER_SECONDS = 60
CONFIG_DIR_ENV = "PSR_CLIENT_CONFIG_DIR"

log = logging.getLogger("psr.host.config")


class ConfigError(Exception):
    """The settings file cannot be read or written. The message says which file and why."""


@dataclass
class AddonEntry:
    """What the host remembers about one add-on."""

    enabled: bool = True
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class HostConfig:
    """The host settings of one installation."""

    client_id: str
    timer_seconds: int = DEFAULT_TIMER_SECONDS
    addons: dict[str, AddonEntry] = field(default_factory=dict)

    def entry(self, addon_id: str) -> AddonEntry:
        """The entry of ``addon_id``, created enabled when first seen (add-ons are on by
        default when discovered)."""
        return self.addons.setdefault(addon_id, AddonEntry())

    def to_json(self) -> dict[str, Any]:
        """The file form."""
        return {
            "client_id": self.client_id,
            "timer_seconds": self.timer_seconds,
            "addons": {
                addon_id: {"enabled": e.enabled, "settings": dict(e.settings)}
                for addon_id, e in sorted(self.addons.items())
            },
        }


def default_config_dir() -> Path:
    """``$PSR_CLIENT_CONFIG_DIR`` or the user config folder of ``psr-client``."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env).expanduser().absolute()
    return Path(appdirs.user_config_dir("psr-client")).absolute()


def _parse(data: Any, path: Path) -> HostConfig:
    if not isinstance(data, dict) or not isinstance(data.get("client_id"), str):
        raise ConfigError(
            f"{path} is not a psr-client settings file (no client_id); "
            "move it away and run psr-client again to start afresh"
        )
    timer = data.get("timer_seconds", DEFAULT_TIMER_SECONDS)
    if isinstance(timer, bool) or not isinstance(timer, int) or timer < 1:
        log.warning(
            "%s: timer_seconds %r is not a positive integer; using %d",
            path,
            timer,
            DEFAULT_TIMER_SECONDS,
        )
        timer = DEFAULT_TIMER_SECONDS
    addons: dict[str, AddonEntry] = {}
    raw_addons = data.get("addons", {})
    for addon_id, raw in raw_addons.items() if isinstance(raw_addons, dict) else []:
        if not isinstance(raw, dict):
            continue
        settings = raw.get("settings", {})
        addons[str(addon_id)] = AddonEntry(
            enabled=raw.get("enabled", True) is not False,
            settings=dict(settings) if isinstance(settings, dict) else {},
        )
    return HostConfig(client_id=data["client_id"], timer_seconds=timer, addons=addons)


def load_config(folder: Path) -> HostConfig:
    """Read the settings file in ``folder``; create it (with a fresh client id) when absent."""
    path = folder / CONFIG_FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        config = HostConfig(client_id=str(uuid.uuid4()))
        save_config(folder, config)
        return config
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON (line {exc.lineno}); fix or move it "
            "away and run psr-client again"
        ) from None
    return _parse(data, path)


def save_config(folder: Path, config: HostConfig) -> None:
    """Write the settings file atomically (temp file + rename) with mode 0600."""
    path = folder / CONFIG_FILE_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".host-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ConfigError(f"cannot write settings in {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(config.to_json(), out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
