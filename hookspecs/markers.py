"""pluggy markers and the identifiers of the contract."""

import pluggy

PROJECT_NAME = "psr"
"""The pluggy project name shared by the host and its add-ons."""

ENTRY_POINT_GROUP = "psr.addons"
"""Entry-point group through which the host discovers add-ons."""

CONTRACT_VERSION = "1.0"
"""Version of this contract. An add-on's manifest names the version it needs in
``contract_version``; the host loads it when the major parts are equal and the host's minor
part is at least the add-on's."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
