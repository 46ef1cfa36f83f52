"""The add-on manifest (``manifest.json``) and its validation.

Shaped like VS Code's ``contributes.configuration``: each setting declares its type, default,
bounds and description, so that the host can show and validate settings without importing the
add-on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

SETTING_TYPES = {"boolean": bool, "integer": int, "string": str}
STRING_FORMATS = {
    "absolute-path": "empty (the default) or an absolute path, such as /home/you/OfflineDB",
}
"""Formats a string setting may declare; the host checks values against them."""


class ManifestError(ValueError):
    """A manifest is invalid. ``problems`` maps each field path to what is wrong with it."""

    def __init__(self, source: str, problems: Mapping[str, list[str]]) -> None:
        self.source = source
        self.problems = dict(problems)
        lines = [f"{path}: {'; '.join(msgs)}" for path, msgs in sorted(self.problems.items())]
        super().__init__(f"invalid manifest {source}: " + " | ".join(lines))


def is_absolute_path_or_empty(value: str) -> bool:
    """The ``absolute-path`` format: a relative path would depend on the working folder."""
    text = value.strip()
    return not text or os.path.isabs(os.path.expanduser(text))


class SettingSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(sorted(SETTING_TYPES)))
    default = fields.Raw(required=True, allow_none=False)
    description = fields.String(required=True, validate=validate.Length(min=1))
    minimum = fields.Integer()
    maximum = fields.Integer()
    format = fields.String(validate=validate.OneOf(sorted(STRING_FORMATS)))

    @validates_schema
    def _default_matches(self, data: dict[str, Any], **_: Any) -> None:
        kind = SETTING_TYPES.get(data.get("type", ""))
        default = data.get("default")
        if kind is None or default is None:
            return
        # bool is an int in Python; a boolean default for an integer setting is still wrong.
        if not isinstance(default, kind) or (kind is int and isinstance(default, bool)):
            raise ValidationError(f"must be of type {data['type']}", "default")
        if data.get("format") and kind is not str:
            raise ValidationError("applies to string settings only", "format")
        if (
            data.get("format") == "absolute-path"
            and isinstance(default, str)
            and not is_absolute_path_or_empty(default)
        ):
            raise ValidationError(f"must be {STRING_FORMATS['absolute-path']}", "default")
        low, high = data.get("minimum"), data.get("maximum")
        if low is not None and default < low:
            raise ValidationError(f"is below the minimum {low}", "default")
        if high is not None and default > high:
            raise ValidationError(f"is above the maximum {high}", "default")


class ManifestSchema(Schema):
    """Schema of ``manifest.json``."""

    id = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_-]{0,39}$"))
    name = fields.String(required=True, validate=validate.Length(min=1))
    version = fields.String(required=True, validate=validate.Regexp(r"^\d+\.\d+\.\d+"))
    description = fields.String(required=True, validate=validate.Length(min=1))
    entry_point = fields.String(required=True, validate=validate.Regexp(r"^[\w.]+:[\w.]+$"))
    contract_version = fields.String(required=True, validate=validate.Regexp(r"^\d+\.\d+$"))
    hooks = fields.List(fields.String(), required=True)
    rights = fields.List(fields.String(), required=True)
    server_settings = fields.List(fields.String(), required=True)
    settings = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]*$")),
        values=fields.Nested(SettingSchema),
        required=True,
    )


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "manifest": list(messages)}
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "value" and isinstance(value, dict):  # marshmallow Dict value errors
                out.update(_flatten(value, prefix))
                continue
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def validate_manifest(data: Any, source: str = "manifest.json") -> dict[str, Any]:
    """Validate manifest data; return it loaded or raise :class:`ManifestError` naming every
    problem by its field path (for example ``settings.sync_interval_minutes.default``)."""
    if not isinstance(data, dict):
        raise ManifestError(source, {"manifest": ["must be a JSON object"]})
    try:
        loaded: dict[str, Any] = ManifestSchema().load(data)
    except ValidationError as exc:
        raise ManifestError(source, _flatten(exc.messages)) from None
    from hookspecs import spec

    unknown = [h for h in loaded["hooks"] if not callable(getattr(spec, h, None))]
    if unknown:
        raise ManifestError(source, {"hooks": [f"unknown hook(s): {', '.join(unknown)}"]})
    return loaded


def load_manifest(path: Path) -> dict[str, Any]:
    """Read and validate a manifest file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(str(path), {"manifest": [f"cannot be read as JSON: {exc}"]}) from None
    return validate_manifest(data, str(path))
