"""The documented API is complete and exact: the developer guide lists ``offline_addon.__all__``
and every hook, and a script that uses only documented names manages a copy end to end."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import hookspecs
import offline_addon
from hookspecs import spec
from reference_server.testing import RunningServer
from tests import support

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCRIPT = Path(support.__file__).with_name("documented_api_script.py")
STDLIB_FOR_LOGIN = {"__future__", "json", "sys", "urllib.request"}


def guide_section(heading: str) -> str:
    """The text of the developer guide under ``heading`` up to the next heading."""
    text = (DOCS / "developer.md").read_text(encoding="utf-8")
    start = text.index(f"{heading}\n")
    following = re.search(r"^#", text[start + len(heading) + 1 :], re.MULTILINE)
    end = len(text) if following is None else start + len(heading) + 1 + following.start()
    return text[start:end]


def test_developer_guide_lists_exactly_the_public_names() -> None:
    listed = re.findall(r"^- `(\w+)`", guide_section("### Public names"), re.MULTILINE)
    assert len(listed) == len(set(listed)), "a name is listed twice"
    assert sorted(listed) == sorted(offline_addon.__all__)


def test_developer_guide_describes_every_hook() -> None:
    hooks = sorted(name for name in dir(spec) if hasattr(getattr(spec, name), "psr_spec"))
    table = guide_section("## The hooks")
    assert len(hooks) >= 10
    assert [h for h in hooks if f"| `{h}(" not in table] == []


def test_guides_link_only_to_files_in_the_repository() -> None:
    for page in [*sorted(DOCS.glob("*.md")), DOCS.parent / "README.md"]:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://")):
                continue
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(DOCS.parent), f"{page.name} links outside: {target}"
            assert resolved.exists(), f"{page.name} links to a missing file: {target}"


def test_script_imports_only_documented_names() -> None:
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    public = {"offline_addon": set(offline_addon.__all__), "hookspecs": set(hookspecs.__all__)}
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {alias.name for alias in node.names}
            assert names <= STDLIB_FOR_LOGIN, f"undocumented import {names}"
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = {alias.name for alias in node.names}
            if module in public:
                assert names <= public[module], f"{module}: {names - public[module]}"
                used |= names
            else:
                assert module in STDLIB_FOR_LOGIN, f"undocumented module {module}"
    assert {"OfflineCopies", "Session", "OfflineCredentials"} <= used


def test_script_lists_creates_syncs_opens_offline_and_deletes_a_copy(
    demo_server: RunningServer, tmp_path: Path
) -> None:
    folder = tmp_path / "copies"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), demo_server.url, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "list: no copies",
        "sync before create: CopyNotFound",
        "create: 3 records",
        "list: demo for alice, 3 records",
        "sync: unchanged",
        "offline: Bank, Mail, Wiki; search 'wiki' finds Wiki",
        "delete: done",
    ]
    assert folder.is_dir()
    assert sorted(p.name for p in folder.iterdir()) == []
