"""Fixtures: logged-in API clients, and ``psr-server`` run in this process."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import pytest

from reference_server import prompting
from reference_server.cli import main
from reference_server.testing import RunningServer
from tests.support.api import ApiClient
from tests.support.servers import CliResult, PsrRunner


@pytest.fixture
def alice(demo: RunningServer) -> Iterator[ApiClient]:
    client = ApiClient(demo.url, "demo").login("alice", "alice-pw")
    yield client
    client.close()


@pytest.fixture
def bob(demo: RunningServer) -> Iterator[ApiClient]:
    client = ApiClient(demo.url, "demo").login("bob", "bob-pw")
    yield client
    client.close()


@pytest.fixture
def psr(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> PsrRunner:
    """``psr(*argv, stdin="")``: the real ``psr-server`` entry point, run in this process."""
    monkeypatch.delenv(prompting.NEW_PASSWORD_ENV, raising=False)
    # In-process runs must never prompt on the terminal of whoever runs the tests; the real
    # no-terminal case runs as a subprocess without one (test_cli.py).
    monkeypatch.setattr(prompting, "has_terminal", lambda: False)

    def run(*argv: object, stdin: str = "") -> CliResult:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            code = main([str(arg) for arg in argv])
        except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
