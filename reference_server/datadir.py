"""The server's data folder: made only on request, opened only when it exists, owner-only.

``init_data_folder`` is the one place that creates a data folder (``psr-server admin --data DIR
init``, and the test helpers in ``testing``); everything else opens an existing one with
``open_data_folder``, so that a mistyped ``--data`` is an error instead of a new, empty server.
The SQLite file holds record passwords, so the folder is 0700 and every file in it 0600; SQLite
gives its ``-wal`` and ``-shm`` files the mode of the database file. A folder found with looser
modes is tightened (and a warning logged) when it is opened.

POSIX modes only: on Windows the folder's ACLs, inherited from the user's profile, apply.
"""

from __future__ import annotations

import logging
import os
import shlex
import stat
from pathlib import Path

from reference_server.db import DB_FILENAME, connect, initialise
from reference_server.errors import DataFolderError

log = logging.getLogger("reference_server")

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_GROUP_OR_OTHER = 0o077


def init_data_folder(data_dir: Path) -> Path:
    """Create a new data folder (0700) with an initialised server file (0600); return it.

    The folder may exist if it is empty; a folder that holds anything is refused, so that
    ``init`` never mixes a server into unrelated files or starts over an existing server.
    """
    folder = Path(data_dir)
    if (folder / DB_FILENAME).exists():
        raise DataFolderError(f"{folder} is already a server data folder; nothing was changed.")
    if folder.exists() and not folder.is_dir():
        raise DataFolderError(f"{folder} exists and is not a folder; choose another path.")
    if folder.is_dir() and any(folder.iterdir()):
        raise DataFolderError(f"{folder} is not empty; give init a new or an empty folder.")
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    # mkdir's mode is cut by the umask, and an existing empty folder keeps its own: set it.
    _set_mode(folder, FOLDER_MODE)
    # Create the file owner-only before SQLite sees it: SQLite would use 0644 minus the umask.
    os.close(os.open(folder / DB_FILENAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _set_mode(folder / DB_FILENAME, FILE_MODE)
    conn = connect(folder)
    try:
        initialise(conn)
    finally:
        conn.close()
    return folder


def open_data_folder(data_dir: Path) -> Path:
    """Check that ``data_dir`` is a server data folder and make it owner-only; return it.

    Raises :class:`DataFolderError`, saying how to create one, when it is not.
    """
    folder = Path(data_dir)
    create = f"psr-server admin --data {shlex.quote(str(folder))} init"
    if not folder.exists():
        raise DataFolderError(
            f"There is no server data folder {folder}; check --data, or create one with: {create}"
        )
    if not folder.is_dir():
        raise DataFolderError(f"{folder} is not a folder; check --data.")
    if not (folder / DB_FILENAME).is_file():
        raise DataFolderError(
            f"{folder} is not a server data folder (it has no {DB_FILENAME}); check --data, "
            f"or create a new one with: {create}"
        )
    tighten(folder)
    return folder


def tighten(folder: Path) -> list[Path]:
    """Take group and other access away from the folder and the files in it; return the
    paths changed (each is also logged as a warning)."""
    if os.name != "posix":
        return []
    changed = [folder] if _tighten(folder, FOLDER_MODE) else []
    for entry in os.scandir(folder):
        # Not through symlinks: a link in the folder must not make us chmod a file elsewhere.
        if entry.is_file(follow_symlinks=False) and _tighten(Path(entry.path), FILE_MODE):
            changed.append(Path(entry.path))
    return changed


def _tighten(path: Path, mode: int) -> bool:
    old = stat.S_IMODE(path.lstat().st_mode)
    if not old & _GROUP_OR_OTHER:
        return False
    _set_mode(path, mode)
    log.warning(
        "made %s readable by its owner only (mode %04o, was %04o): the data folder "
        "holds record passwords",
        path,
        mode,
        old,
    )
    return True


def _set_mode(path: Path, mode: int) -> None:
    if os.name != "posix":
        return
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise DataFolderError(
            f"Cannot make {path} readable by its owner only ({exc.strerror}); "
            "run the server as the folder's owner, or fix the folder's owner."
        ) from exc
