"""The layer rule of the add-on (``offline_addon/__init__.py``'s module map) is enforced.

``make test`` runs ``lint-imports`` over the real tree; these tests prove that the contract
would catch the two kinds of violation the module map forbids, on a copy of the package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_copy(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    tree = tmp_path / "tree"
    shutil.copytree(
        ROOT / "offline_addon", tree / "offline_addon", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    target = tree / "offline_addon" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_real_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint_copy(tmp_path, "errors.py", "")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "protocol/answers.py",
            "import offline_addon.storage.paths  # noqa",
            "The add-on's layers import only downwards",
        ),
        (
            "storage/files.py",
            "import offline_addon.runtime.schedule  # noqa",
            "The add-on's layers import only downwards",
        ),
        ("protocol/digest.py", "import sqlcipher3  # noqa", "protocol is pure"),
    ],
)
def test_an_upward_or_impure_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    result = _lint_copy(tmp_path, module, line)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout
