"""The add-on's four settings: values, validation, and what a changed folder means.

The host validates settings against ``manifest.json`` already; the add-on validates them again
with its own marshmallow schema because a setting may also come from the Python API or a host
that validates less. A bad value raises :class:`SettingsError` naming the field; the caller
(``OfflineAddon.on_settings_changed``) then keeps the old settings.

Changing ``database_path``: existing copies are **moved** to the new folder, safely:

* the move runs on the add-on's worker thread, so it never overlaps a synchronisation;
* on the same filesystem each file is moved with ``os.replace`` (atomic per file); across
  filesystems each file is copied to a temporary name in the new folder, flushed with
  ``fsync`` and renamed into place, and only then is the old file removed;
* the database file moves first and the sidecar (what the offline login screen lists) last,
  so a crash in between leaves a complete copy in the old folder that is still found;
* a copy that already exists in the new folder is never overwritten: the old one stays where
  it is and the user is told.

See :func:`offline_addon.api.move_copies` for the file-level steps.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from offline_addon.errors import SettingsError

DEFAULT_INTERVAL_MINUTES = 30
MIN_INTERVAL_MINUTES = 1
MAX_INTERVAL_MINUTES = 1440


@dataclass(frozen=True)
class AddonSettings:
    """The add-on's settings, validated however they are made (``AddonSettings(...)`` too:
    a bad value raises :class:`SettingsError` naming the field). ``database_path`` ""
    means the system default."""

    sync_after_save: bool = True
    sync_after_login: bool = True
    sync_interval_minutes: int = DEFAULT_INTERVAL_MINUTES
    database_path: str = ""

    def __post_init__(self) -> None:
        # The same schema as for a mapping, on the values as given: a dataclass field must
        # already have its type ("true" is a setting file's spelling, not a bool here).
        for name, kind, words in (
            ("sync_after_save", bool, "true or false"),
            ("sync_after_login", bool, "true or false"),
            ("database_path", str, "a folder path (text)"),
        ):
            if not isinstance(getattr(self, name), kind):
                raise SettingsError(name, f"must be {words}.")
        _validated(asdict(self))

    @property
    def interval_seconds(self) -> float:
        """The interval between automatic syncs, in seconds."""
        return float(self.sync_interval_minutes * 60)

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain data (what a host stores)."""
        return asdict(self)


class _StrictBoolean(fields.Boolean):
    """Accept only real booleans (and the text "true"/"false"): "yes" or 1 are refused,
    because a typo in a settings file should be reported, not guessed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValidationError("must be true or false.")


class _StrictInteger(fields.Integer):
    """A whole number that is not a boolean (``True`` would otherwise count as 1)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise ValidationError("must be a whole number.")
        return int(super()._deserialize(value, attr, data, **kwargs))


class SettingsSchema(Schema):
    """marshmallow schema of the add-on's settings (mirrors ``manifest.json``)."""

    sync_after_save = _StrictBoolean(load_default=True)
    sync_after_login = _StrictBoolean(load_default=True)
    sync_interval_minutes = _StrictInteger(
        strict=True,
        load_default=DEFAULT_INTERVAL_MINUTES,
        validate=validate.Range(MIN_INTERVAL_MINUTES, MAX_INTERVAL_MINUTES),
    )
    database_path = fields.String(load_default="")

    @validates("database_path")
    def _absolute_or_empty(self, value: str, **_: Any) -> None:
        if value == "":
            return
        if "\x00" in value:
            raise ValidationError("must not contain a NUL character.")
        if not os.path.isabs(value):
            raise ValidationError("must be an absolute folder path, or empty for the default.")


def _first_problem(messages: Any) -> tuple[str, str]:
    if isinstance(messages, dict):
        for key in sorted(messages):
            value = messages[key]
            text = value[0] if isinstance(value, list) and value else str(value)
            return str(key), str(text)
    return "settings", str(messages)


def parse_settings(mapping: Mapping[str, Any] | None) -> AddonSettings:
    """Validate ``mapping`` and return :class:`AddonSettings`.

    Missing keys take their defaults; unknown keys (from a newer manifest) are ignored. Raises
    :class:`SettingsError` naming the first bad field."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise SettingsError("settings", "must be a mapping of setting names to values.")
    try:
        known = {k: v for k, v in mapping.items() if k in SettingsSchema().fields}
    except Exception:  # a mapping that fails to iterate
        raise SettingsError("settings", "could not be read.") from None
    return AddonSettings(**_validated(known))


def _validated(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` loaded by :class:`SettingsSchema`; SettingsError naming the first bad one."""
    try:
        loaded: dict[str, Any] = SettingsSchema().load(values)
    except ValidationError as exc:
        field, problem = _first_problem(exc.messages)
        if problem and not problem.endswith("."):
            problem += "."
        raise SettingsError(field, problem) from None
    return loaded
