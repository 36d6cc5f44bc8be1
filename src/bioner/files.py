"""Writing users' files safely: atomic replacement, no output that is also an input, run locks.

Every file bioner writes goes to a temporary file in the target folder and is renamed into
place only when complete, so an error or Ctrl-C leaves the previous file intact and never a
partial file that looks finished.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from bioner.errors import BionerError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8",
                 newline: str | None = None) -> Iterator[IO]:  # type: ignore[type-arg]
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success,
    delete it on any exception (KeyboardInterrupt included)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    ensure_writable_dir(folder)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding,
                       newline=None if "b" in mode else newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text)


def ensure_writable_dir(folder: Path) -> None:
    """Create ``folder`` if needed and check that files can be made in it — before the work, so a
    long run does not fail at its last step."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BionerError(f"cannot create the output folder {folder}: {exc.strerror}") from exc
    if not folder.is_dir():
        raise BionerError(f"{folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BionerError(f"the output folder {folder} is not writable")


def check_output(output: str | Path | None, inputs: Iterable[str | Path | None]) -> None:
    """Refuse an output that is one of the inputs (it would be emptied before it is read), and an
    output folder that cannot be written; called before anything is read."""
    if output is None:
        return
    out = Path(output)
    for item in inputs:
        if item is None:
            continue
        src = Path(item)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(out, src)
        if same:
            raise BionerError(f"the output {out} is also an input; write to another file "
                              "(bioner never overwrites its own input)")
    ensure_writable_dir(out.parent if out.suffix or not out.is_dir() else out)


class RunLock:
    """An exclusive lock on a run folder while one process writes it (advisory ``flock``, so it is
    released when the process dies, even by SIGKILL)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.handle: IO[str] | None = None

    def __enter__(self) -> "RunLock":
        ensure_writable_dir(self.folder)
        handle = open(self.folder / LOCK_FILE, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise BionerError(f"{self.folder} is being written by {owner}; wait for it to finish or use "
                              "another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.seek(0)
            self.handle.truncate()
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def _swap_in(tmp: Path, final: Path) -> None:
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def write_folder_atomically(final: Path, write: Any) -> None:
    """Call ``write(tmp_folder)`` then replace ``final`` with it: a reader sees the old folder or
    the new one, never a mix (used for model folders, checkpoints and fetched datasets)."""
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _swap_in(tmp, final)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (data hashes, downloads, model files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
