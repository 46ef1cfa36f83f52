"""The host's add-on contract: hook specifications, the values hooks receive, host services.

This package is what the Password Safe and Repository client ("the host") ships for add-ons.
An add-on is a distribution with an entry point in the group :data:`ENTRY_POINT_GROUP` whose
object carries :data:`hookimpl`-marked methods, and a ``manifest.json`` in the entry point's
top-level package (see :mod:`hookspecs.manifest`).
"""

from hookspecs.manifest import ManifestError, ManifestSchema, load_manifest, validate_manifest
from hookspecs.markers import CONTRACT_VERSION, ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl, hookspec
from hookspecs.services import HostServices
from hookspecs.types import (
    AccessNotingSession,
    Account,
    CommandArgument,
    CommandInvocation,
    HostCommand,
    OfflineCredentials,
    OfflineLoginResult,
    OfflineSession,
    RecordView,
    SavedRecord,
    Session,
    WritableOfflineSession,
)

__all__ = [
    "CONTRACT_VERSION",
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "AccessNotingSession",
    "Account",
    "CommandArgument",
    "CommandInvocation",
    "HostCommand",
    "HostServices",
    "ManifestError",
    "ManifestSchema",
    "OfflineCredentials",
    "OfflineLoginResult",
    "OfflineSession",
    "RecordView",
    "SavedRecord",
    "Session",
    "WritableOfflineSession",
    "hookimpl",
    "hookspec",
    "load_manifest",
    "validate_manifest",
]
