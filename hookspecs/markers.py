"""pluggy markers and the identifiers of the contract."""

import pluggy

PROJECT_NAME = "psr"
"""The pluggy project name shared by the host and its add-ons."""

ENTRY_POINT_GROUP = "psr.addons"
"""Entry-point group through which the host discovers add-ons."""

CONTRACT_VERSION = "1.2"
"""Version of this contract. An add-on's manifest names the version it needs in
``contract_version``; the host loads it when the major parts are equal and the host's minor
part is at least the add-on's.

Minor versions only add (an add-on written for 1.0 runs unchanged on a 1.1 host); an add-on
that declares 1.0 but wants to use a 1.1 addition checks for it (``getattr``), because it may
run on a 1.0 host. 1.1 added :class:`~hookspecs.types.Account` and
``CommandInvocation.account``, ``HostServices.command_text`` and the optional
``OfflineSession.count_matches``. 1.2 added :class:`~hookspecs.types.WritableOfflineSession`
(an offline session that can edit, create and delete records in the add-on's copy) and
``OfflineLoginResult.pending_changes`` / ``.conflicts``; a host that runs a 1.1 add-on sees
read-only sessions and zero counts. 1.2 also added the optional
:class:`~hookspecs.types.AccessNotingSession` (``find_record``, ``reveal``, ``note_copied``:
what an offline session shows, reveals and copies is noted for the server's audit); a host
checks for it with ``isinstance`` and falls back to ``get_record`` and the record's fields."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
