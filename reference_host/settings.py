"""Add-on settings validated against the add-on's manifest with marshmallow.

The manifest declares each setting's type, default and bounds; :func:`settings_schema` turns
that into a marshmallow schema, so that a value typed on the command line (``"on"``, ``"30"``)
and a value read back from the settings file are checked by the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from hookspecs.manifest import STRING_FORMATS, is_absolute_path_or_empty

# What the command line accepts for a boolean setting.
TRUTHY = frozenset({"true", "on", "1", "yes", True})
FALSY = frozenset({"false", "off", "0", "no", False})


class SettingsError(ValueError):
    """A settings change is refused. ``problems`` maps each setting name to what is wrong."""

    def __init__(self, addon_id: str, problems: Mapping[str, list[str]]) -> None:
        self.addon_id = addon_id
        self.problems = dict(problems)
        parts = [f"{name}: {' '.join(msgs)}" for name, msgs in sorted(self.problems.items())]
        super().__init__(f"setting refused for add-on {addon_id!r}: " + "; ".join(parts))


class _Switch(fields.Boolean):
    """A boolean that also takes ``On``/``TRUE``/... from the command line."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if isinstance(value, str):
            value = value.strip().lower()
        return bool(super()._deserialize(value, attr, data, **kwargs))


def _field(spec: Mapping[str, Any]) -> fields.Field[Any]:
    kind = spec["type"]
    if kind == "boolean":
        return _Switch(truthy=set(TRUTHY), falsy=set(FALSY))
    if kind == "integer":
        low, high = spec.get("minimum"), spec.get("maximum")
        checks = [validate.Range(min=low, max=high)] if low is not None or high is not None else []
        return fields.Integer(strict=False, validate=checks)
    if spec.get("format") == "absolute-path":
        return fields.String(validate=_absolute_path)
    return fields.String()


def _absolute_path(value: str) -> None:
    if not is_absolute_path_or_empty(value):
        raise ValidationError(f"Must be {STRING_FORMATS['absolute-path']}.")


def settings_schema(manifest: Mapping[str, Any]) -> Schema:
    """A schema that accepts any subset of the manifest's settings and refuses unknown keys."""
    declared = {name: _field(spec) for name, spec in manifest["settings"].items()}
    schema_class = Schema.from_dict(declared, name=f"Settings_{manifest['id']}")
    return schema_class(unknown=RAISE)


def _problems(messages: Any) -> dict[str, list[str]]:
    if not isinstance(messages, dict):
        return {"settings": [str(messages)]}
    out: dict[str, list[str]] = {}
    for name, msgs in messages.items():
        if msgs == ["Unknown field."]:
            msgs = ["unknown setting"]
        out[str(name)] = [str(m) for m in msgs] if isinstance(msgs, list) else [str(msgs)]
    return out


def validate_settings(manifest: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and convert ``values`` (a subset of the settings); raise :class:`SettingsError`
    naming every bad field."""
    try:
        loaded: dict[str, Any] = settings_schema(manifest).load(dict(values))
    except ValidationError as exc:
        raise SettingsError(manifest["id"], _problems(exc.messages)) from None
    return loaded


def defaults(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting's default from the manifest."""
    return {name: spec["default"] for name, spec in manifest["settings"].items()}


def effective_settings(manifest: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with the stored values that are still valid; a stored value that no
    longer validates (hand-edited file, a newer manifest) falls back to its default."""
    result = defaults(manifest)
    for name, value in stored.items():
        try:
            result.update(validate_settings(manifest, {name: value}))
        except SettingsError:
            continue
    return result


def with_change(
    manifest: Mapping[str, Any], stored: Mapping[str, Any], key: str, raw_value: Any
) -> dict[str, Any]:
    """The stored settings after setting ``key`` to ``raw_value`` (converted to its type), or
    :class:`SettingsError`; ``stored`` itself is never changed, so the old value stays."""
    converted = validate_settings(manifest, {key: raw_value})
    updated = dict(stored)
    updated.update(converted)
    return updated
