"""Every helper of the tests, one module per kind (the ``conftest.py`` files hold fixtures only
and import from here; no test module imports from another test module or from a conftest).

- ``accounts``: logging in (``POST /session`` through the host's own ``OnlineClient``).
- ``servers``: starting the reference server (``serve``), seeding it (``seed``), ``psr-server``
  results.
- ``worlds``: a fresh database and user per test on a shared server (the proof suite's
  ``World``).
- ``records``: records for server imports and feed changes and pages.
- ``copies``: building copies, and changing a closed copy's file as any SQLCipher tool could.
- ``checks``: what every fault and kill test ends with (intact, nothing lost, converges).
- ``faults``: the fault-injecting proxy in front of the real server (``FaultProxy``).
- ``hostile``: a scripted hostile sync server (drips, stalls, bombs, lies).
- ``kill``: the one writing child process for kill tests (``Child``; secrets on stdin).
- ``sqlcipher4``: an independent reader of SQLCipher 4 files.
- ``host``: test add-ons with real entry points, hosts and shells in-process, ``psr-client``
  as a subprocess and in a terminal.
- ``api``: the server's API as the server tests speak it.
- ``mdrun``: running the guides' examples, and the server they expect.
- ``documented_api_script``: a script using only the documented API (run by the docs tests).
"""
