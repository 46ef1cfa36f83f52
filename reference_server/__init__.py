"""Reference server (``psr-server``): the Password Safe server and server manager, small but real.

Modules, one job each:

- ``datadir``: the data folder (only ``init`` creates one; owner-only modes, tightened on open)
- ``db``: the SQLite file (schema, WAL, transactions, connection pool, meta values)
- ``accounts``: databases, users, passwords, bearer tokens, server manager API tokens
- ``records``: records, per-user rights and the create right; the conditional (idempotent)
  writes; every change refreshes the feed and the audit trail in its transaction
- ``feed``: the per-user change feed (rows, pages, digest, compaction)
- ``audit``: the audit trail of record changes (who, what, online or offline) and of the
  offline access events clients report; change and event ids
- ``reports``: what clients report (access event batches, copy reports), checked strictly
- ``copies``: the registry of offline copies (reported by clients, revoked by the server)
- ``digests``: the incrementally maintained multiset digest of each user's feed
- ``cursor``: the signed, opaque feed cursor
- ``app``: the Flask HTTP API (``/api/v1``, see ``docs/sync-api.yaml``)
- ``serving``: waitress serving with a clean stop; ``cli``/``admin_cli``: the ``psr-server``
  command; ``prompting``: reading a secret (stdin, environment, or a prompt without echo)
- ``admin``: the server manager as a Python API; ``testing``: servers for tests; ``faults``:
  injected 429/503/slow answers for tests
"""
