"""Run the examples of a Markdown guide, so that the guides cannot drift from the code.

Two kinds of fenced blocks run; every other block (``sh``, ``text``, ``json``...) is only shown:

* ``pycon`` blocks are doctests. All blocks of one file form one doctest session (names
  defined in one block are there in the next), checked with ``ELLIPSIS`` and
  ``NORMALIZE_WHITESPACE``. Line numbers in failures are the Markdown file's.
* ``console`` blocks are shell transcripts. ``$ COMMAND`` runs COMMAND with ``bash -c`` in the
  guide's work folder; the following lines are its expected output (stdout and stderr
  together, compared like a doctest, so ``...`` matches anything). ``psr> TEXT`` lines are
  what the user types into the command's prompt: they are fed to its standard input in order
  and are not part of the expected output (a piped ``psr-client login`` echoes nothing).

An HTML comment ``<!-- docs-test: NAME -->`` (invisible when the page is rendered) calls the
action NAME that the test provides at that point, for example stopping the server before the
offline-login example.
"""

from __future__ import annotations

import doctest
import io
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reference_server.testing import RunningServer

from .servers import seed, serve

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
FENCE = re.compile(r"^```(\w*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*([\w-]+)\s*-->\s*$")
COMMAND_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Block:
    """A fenced block: its language, body lines, and the file line of its first body line."""

    language: str
    lines: tuple[str, ...]
    first_line: int


@dataclass(frozen=True)
class Directive:
    """A ``<!-- docs-test: NAME -->`` comment."""

    name: str
    line: int


def parse(text: str) -> Iterator[Block | Directive]:
    """The blocks and directives of a Markdown text, in order."""
    language: str | None = None
    body: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if language is None:
            fence = FENCE.match(line)
            if fence:
                language, body, start = fence.group(1), [], number + 1
            elif directive := DIRECTIVE.match(line):
                yield Directive(directive.group(1), number)
        elif line.startswith("```"):
            yield Block(language, tuple(body), start)
            language = None
        else:
            body.append(line)
    if language is not None:
        raise ValueError(f"unclosed code fence starting at line {start - 1}")


def run_pycon(path: Path, globs: dict[str, object]) -> tuple[str | None, dict[str, object]]:
    """Run every ``pycon`` block of ``path`` as one doctest.

    Returns the failure report (``None`` when every example passed) and the names the
    examples left behind (so the caller can release what they opened)."""
    total = len(path.read_text(encoding="utf-8").splitlines())
    lines = [""] * (total + 1)
    found = False
    for item in parse(path.read_text(encoding="utf-8")):
        if isinstance(item, Block) and item.language == "pycon":
            found = True
            for offset, line in enumerate(item.lines):
                lines[item.first_line - 1 + offset] = line
    if not found:
        return f"{path.name}: no pycon blocks", {}
    # Blank lines everywhere else keep doctest's line numbers equal to the file's.
    test = doctest.DocTestParser().get_doctest("\n".join(lines), globs, path.name, str(path), 0)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test, out=report.write, clear_globs=False)
    if runner.failures:
        return report.getvalue(), test.globs
    if runner.tries == 0:
        return f"{path.name}: no examples found in the pycon blocks", test.globs
    return None, test.globs


@dataclass
class Command:
    """One ``$`` line of a console block with its input and expected output."""

    text: str
    line: int
    stdin: list[str]
    expected: list[str]


def commands_of(block: Block) -> list[Command]:
    """The commands of a console block; ValueError for text before the first ``$``."""
    commands: list[Command] = []
    for offset, line in enumerate(block.lines):
        number = block.first_line + offset
        if line.startswith("$ "):
            commands.append(Command(line[2:], number, [], []))
        elif not commands:
            raise ValueError(f"line {number}: a console block must start with '$ '")
        elif line.startswith("psr> "):
            commands[-1].stdin.append(line[len("psr> ") :])
        else:
            commands[-1].expected.append(line)
    return commands


def run_command(command: Command, cwd: Path, env: Mapping[str, str]) -> str | None:
    """Run one command; a failure report or ``None`` when its output is as documented."""
    stdin = "".join(f"{line}\n" for line in command.stdin)
    done = subprocess.run(
        ["bash", "-c", command.text],
        cwd=cwd,
        env=dict(env),
        input=stdin,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    want = "".join(f"{line}\n" for line in command.expected)
    if doctest.OutputChecker().check_output(want, done.stdout, FLAGS):
        return None
    return (
        f"line {command.line}: $ {command.text}\n"
        f"--- documented output:\n{want}--- actual output (exit {done.returncode}):\n"
        f"{done.stdout}"
    )


def run_console(
    path: Path, cwd: Path, env: Mapping[str, str], actions: Mapping[str, Callable[[], None]]
) -> tuple[int, list[str]]:
    """Run every ``console`` block of ``path`` in order, and the directives between them.

    Returns the number of commands run and the failure reports."""
    failures: list[str] = []
    ran = 0
    for item in parse(path.read_text(encoding="utf-8")):
        if isinstance(item, Directive):
            if item.name not in actions:
                failures.append(f"line {item.line}: unknown docs-test action {item.name!r}")
                continue
            actions[item.name]()
        elif item.language == "console":
            for command in commands_of(item):
                ran += 1
                report = run_command(command, cwd, env)
                if report is not None:
                    failures.append(f"{path.name} {report}")
    return ran, failures


def tool_env(work: Path, **extra: str) -> dict[str, str]:
    """An environment for the documented commands: the venv's scripts first on PATH, and
    the user's data and config folders inside ``work`` (so the real defaults are used,
    but nothing touches the real home folder)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PSR_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_DATA_HOME"] = str(work / "home" / "data")
    env["XDG_CONFIG_HOME"] = str(work / "home" / "config")
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


# -- the server the guides' examples expect ---------------------------------------------------

DB = "demo"
USER = "alice"
PASSWORD = "alice-pw"
RECORDS = [
    {
        "name": "Mail",
        "fields": {"username": "alice", "password": "mail-pw", "url": "https://mail.example"},
    },
    {"name": "Bank", "fields": {"username": "alice-b", "password": "bank-pw"}},
    {"name": "Wiki", "fields": {"username": "alice", "password": "wiki-pw", "notes": "team wiki"}},
]


@contextmanager
def demo_site(data_dir: Path) -> Iterator[RunningServer]:
    """A server on ``data_dir`` with database ``demo`` (offline allowed), user ``alice``
    (offline right, 7 days) and three records alice may read, write and export."""
    with serve(data_dir) as server:
        seed(server, DB, {USER: PASSWORD}, RECORDS)
        yield server
