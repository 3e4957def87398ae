"""Owner-only files and directories: what Octomail creates on disk is readable by no one else.

The database, var/secrets.json and the Maildirs hold personal data and keys. Modes are set
when each file or directory is created (not by changing the process umask, which is global
and would also affect files other code creates on purpose for other users).
"""

from __future__ import annotations

import mailbox
import os
from pathlib import Path
from typing import IO

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as 0700; existing directories are left alone
    (they may be shared ones such as /tmp or a home directory)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            continue  # another process made it first
        os.chmod(directory, DIR_MODE)  # mkdir's mode is filtered by the umask; be exact
    return path


def private_file(path: Path) -> Path:
    """Create an empty 0600 file unless it exists (e.g. the SQLite database before SQLite
    opens it: its -wal and -shm files then take the database file's mode)."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path
    os.close(fd)
    return path


class PrivateMaildir(mailbox.Maildir):
    """A Maildir whose directories are 0700 and whose messages are 0600.

    The standard library creates message files with 0666 minus the umask; tightening the
    file in tmp/ before anything is written leaves no window where it is readable.
    """

    def __init__(self, dirname: str | os.PathLike[str], create: bool = True) -> None:
        root = Path(dirname)
        if create:
            private_dir(root)
            for sub in ("tmp", "new", "cur"):
                private_dir(root / sub)
        super().__init__(str(root), factory=None, create=create)

    def _create_tmp(self) -> IO[bytes]:
        # Private in CPython's mailbox.Maildir (the one place a new file is created): typeshed
        # does not declare it.
        handle = super()._create_tmp()  # type: ignore[misc]
        os.fchmod(handle.fileno(), FILE_MODE)
        return handle
