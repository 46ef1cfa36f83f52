"""Add-on discovery (entry points + manifest) and the guarded hook caller.

An add-on is refused, with a message naming what is wrong, when it cannot be imported, when its
manifest is invalid or needs a contract version this host does not support, or when its hook
implementations do not match the host's specs. A refused add-on never stops the host.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from hookspecs import (
    CONTRACT_VERSION,
    ENTRY_POINT_GROUP,
    PROJECT_NAME,
    ManifestError,
    validate_manifest,
)
from hookspecs import spec as hookspec_module

log = logging.getLogger("psr.host.addons")


@dataclass(frozen=True)
class AddonInfo:
    """One discovered add-on. ``refused`` is ``None`` for a usable add-on, else the reason."""

    addon_id: str
    name: str
    version: str
    entry_point: str
    manifest: Mapping[str, Any] | None = field(default=None, repr=False)
    plugin: object | None = field(default=None, repr=False)
    refused: str | None = None


def contract_supported(needed: str, host: str = CONTRACT_VERSION) -> bool:
    """Whether a host of contract version ``host`` can load an add-on that needs ``needed``:
    the same major version and a host minor version at least the add-on's."""
    try:
        need_major, need_minor = (int(p) for p in needed.split("."))
        host_major, host_minor = (int(p) for p in host.split("."))
    except ValueError:
        return False
    return need_major == host_major and need_minor <= host_minor


def _problem_text(exc: ManifestError) -> str:
    return "; ".join(f"{path}: {' '.join(msgs)}" for path, msgs in sorted(exc.problems.items()))


def _read_manifest(ep: importlib.metadata.EntryPoint) -> dict[str, Any]:
    package = ep.module.split(".")[0]
    resource = importlib.resources.files(package) / "manifest.json"
    source = f"{package}/manifest.json"
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(source, {"manifest": ["is missing"]}) from None
    except (OSError, ValueError) as exc:
        raise ManifestError(source, {"manifest": [f"cannot be read as JSON ({exc})"]}) from None
    return validate_manifest(data, source)


def _check_hooks(addon_id: str, plugin: object) -> None:
    """Register ``plugin`` in a throw-away manager so that pluggy checks its hook names and
    signatures before the real manager ever sees it."""
    trial = pluggy.PluginManager(PROJECT_NAME)
    trial.add_hookspecs(hookspec_module)
    trial.register(plugin, name=addon_id)
    trial.check_pending()


def load_addon(ep: importlib.metadata.EntryPoint) -> AddonInfo:
    """Load one entry point into an :class:`AddonInfo` (refused, with why, when unusable)."""

    def refuse(why: str, manifest: Mapping[str, Any] | None = None) -> AddonInfo:
        name = str(manifest["name"]) if manifest else ep.name
        version = str(manifest["version"]) if manifest else "?"
        return AddonInfo(ep.name, name, version, ep.value, manifest, refused=why)

    try:
        manifest = _read_manifest(ep)
    except ManifestError as exc:
        return refuse(f"invalid manifest: {_problem_text(exc)}")
    except Exception as exc:  # an add-on's broken import must not stop the host
        return refuse(f"its package cannot be imported ({type(exc).__name__}: {exc})")
    if manifest["id"] != ep.name:
        return refuse(
            f"invalid manifest: id: {manifest['id']!r} differs from the entry point "
            f"name {ep.name!r}",
            manifest,
        )
    if manifest["entry_point"] != ep.value:
        return refuse(
            f"invalid manifest: entry_point: {manifest['entry_point']!r} differs from "
            f"the installed entry point {ep.value!r}",
            manifest,
        )
    if not contract_supported(manifest["contract_version"]):
        return refuse(
            f"needs host contract version {manifest['contract_version']}, this host "
            f"supports {CONTRACT_VERSION}; install a matching version of the add-on",
            manifest,
        )
    try:
        plugin = ep.load()
        _check_hooks(ep.name, plugin)
    except Exception as exc:
        return refuse(f"cannot be loaded ({type(exc).__name__}: {exc})", manifest)
    return AddonInfo(ep.name, manifest["name"], manifest["version"], ep.value, manifest, plugin)


def discover(group: str = ENTRY_POINT_GROUP) -> list[AddonInfo]:
    """Every add-on installed under the entry-point group, sorted by id; a second add-on with
    an id already taken is refused."""
    found: dict[str, AddonInfo] = {}
    extra: list[AddonInfo] = []
    for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
        info = load_addon(ep)
        if info.addon_id in found:
            extra.append(
                AddonInfo(
                    info.addon_id,
                    info.name,
                    info.version,
                    ep.value,
                    refused=f"another add-on already has the id {ep.name!r}",
                )
            )
            continue
        found[info.addon_id] = info
    for info in found.values():
        if info.refused:
            log.warning("add-on %r refused: %s", info.addon_id, info.refused)
    return sorted(found.values(), key=lambda i: i.addon_id) + extra


class HookCaller:
    """A pluggy manager whose hooks are called one add-on at a time.

    pluggy stops the remaining implementations when one raises; the host calls each add-on's
    implementation on its own, so that a failing add-on is logged and the others still run.
    A lock serialises calls with (un)registration, so that no hook reaches an add-on after its
    ``on_addon_disabled``.
    """

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(PROJECT_NAME)
        self._pm.add_hookspecs(hookspec_module)
        self._lock = threading.RLock()

    def register(self, addon_id: str, plugin: object) -> None:
        """Register an add-on's hook implementations under its id."""
        with self._lock:
            self._pm.register(plugin, name=addon_id)
            self._pm.check_pending()

    def unregister(self, addon_id: str) -> None:
        """Remove an add-on's hook implementations."""
        with self._lock:
            self._pm.unregister(name=addon_id)

    def registered(self) -> list[str]:
        """Ids of the registered add-ons."""
        with self._lock:
            return sorted(name for name, _ in self._pm.list_name_plugin() if name)

    def call(self, hook: str, **kwargs: Any) -> dict[str, Any]:
        """Call ``hook`` on every registered add-on; return each answer by add-on id. A
        failing add-on is logged and left out."""
        return self._call(hook, None, kwargs, first=False)

    def call_one(self, addon_id: str, hook: str, /, **kwargs: Any) -> Any:
        """Call ``hook`` on one add-on only; ``None`` when it does not implement it or fails."""
        return self._call(hook, addon_id, kwargs, first=False).get(addon_id)

    def call_first(self, hook: str, **kwargs: Any) -> tuple[str, Any] | None:
        """Ask each add-on in turn; the first non-``None`` answer and who gave it."""
        answers = self._call(hook, None, kwargs, first=True)
        return next(iter(answers.items()), None)

    def _call(
        self, hook: str, only: str | None, kwargs: Mapping[str, Any], *, first: bool
    ) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        with self._lock:
            caller = getattr(self._pm.hook, hook)
            # pluggy calls the last registered first; keep that order.
            for impl in reversed(caller.get_hookimpls()):
                if only is not None and impl.plugin_name != only:
                    continue
                if impl.hookwrapper or impl.wrapper:
                    log.warning(
                        "add-on %r: hook wrappers are not supported; %s skipped",
                        impl.plugin_name,
                        hook,
                    )
                    continue
                try:
                    answer = impl.function(**{name: kwargs[name] for name in impl.argnames})
                except Exception as exc:
                    log.error(
                        "add-on %r failed in %s: %s: %s",
                        impl.plugin_name,
                        hook,
                        type(exc).__name__,
                        exc,
                    )
                    log.debug("traceback of the failure", exc_info=True)
                    continue
                if answer is None:
                    continue
                answers[impl.plugin_name] = answer
                if first:
                    break
        return answers
