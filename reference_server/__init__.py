"""Reference server (``psr-server``): the Password Safe server and server manager, small but real.

Modules, one job each:

- ``datadir``: the data folder (only ``init`` creates one; owner-only modes, tightened on open)
- ``db``: the SQLite file (schema, WAL, transactions, connection pool, meta values)
- ``accounts``: databases, users, passwords, bearer tokens
- ``records``: records and per-user rights; every change refreshes the feed in its transaction
- ``feed``: the per-user change feed (rows, pages, digest, compaction)
- ``digests``: the incrementally maintained multiset digest of each user's feed
- ``cursor``: the signed, opaque feed cursor
- ``app``: the Flask HTTP API (``/api/v1``, see ``docs/sync-api.yaml``)
- ``serving``: waitress serving with a clean stop; ``cli``/``admin_cli``: the ``psr-server``
  command; ``prompting``: reading a secret (stdin, environment, or a prompt without echo)
- ``admin``: the server manager as a Python API; ``testing``: servers for tests; ``faults``:
  injected 429/503/slow answers for tests
"""
