"""The four kinds of file-system trouble, told apart, each in one sentence with its numbers.

A full disk is produced for real in tests/reliability/test_disk_full.py; a quota, a read-only file
system and a failing disk cannot be produced here without privileges (tmpfs has no quotas in this
kernel, a busy file system cannot be remounted read-only), so these take the errors as the kernel
and py-lmdb report them: an OSError with its errno, or an lmdb.Error carrying only strerror's text.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import lmdb
import pytest
from support.mounts import Mounts

from bridge.filesystem import BROKEN, FULL, QUOTA, READ_ONLY, Trouble, display, errno_of


def oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


@pytest.mark.parametrize(("error", "kind"), [
    (oserror(errno.ENOSPC), FULL),
    (oserror(errno.EDQUOT), QUOTA),
    (oserror(errno.EROFS), READ_ONLY),
    (lmdb.DiskError("mdb_txn_commit: No space left on device"), FULL),
    (lmdb.Error("mdb_txn_commit: Disk quota exceeded"), QUOTA),
    (lmdb.Error("mdb_txn_commit: Read-only file system"), READ_ONLY),
])
def test_each_error_is_its_kind(tmp_path: Path, error: BaseException, kind: str) -> None:
    trouble = Trouble.of(error, tmp_path)
    assert trouble is not None and trouble.kind == kind


def test_an_io_error_with_room_left_is_a_failing_disk_and_other_errors_are_none_of_these(tmp_path: Path) -> None:
    trouble = Trouble.of(lmdb.Error("mdb_txn_commit: Input/output error"), tmp_path)
    assert trouble is not None and trouble.kind == BROKEN and trouble.free >= 1024 * 1024
    assert Trouble.of(lmdb.Error("mdb_put: MDB_KEYEXIST"), tmp_path) is None
    assert errno_of(ValueError("x")) is None
    assert Trouble.of(ValueError("x"), tmp_path, any_error=True).kind == BROKEN  # type: ignore[union-attr]


async def test_an_io_error_on_a_full_file_system_is_a_full_disk(tmp_path: Path) -> None:
    """LMDB reports a short write (the disk filled up inside its pwrite) as EIO."""
    folder = tmp_path / "small"
    mounts = await Mounts.start({folder: "256k"})
    try:
        mounts.fill(folder)
        trouble = Trouble.of(lmdb.Error("mdb_txn_commit: Input/output error"), mounts.outside(folder))
        assert trouble is not None and (trouble.kind, trouble.free) == (FULL, 0)
    finally:
        await mounts.close()


def test_the_sentences(tmp_path: Path) -> None:
    where = "~/.config/opencode"
    quota = Trouble.of(oserror(errno.EDQUOT), tmp_path)
    read_only = Trouble.of(oserror(errno.EROFS), tmp_path)
    broken = Trouble.of(oserror(errno.EIO), tmp_path)
    assert quota is not None and read_only is not None and broken is not None
    free = quota.free
    assert quota.held(351, where) == (
        f"The disk quota is exhausted on the file system of ~/.config/opencode ({free:,} bytes free on the disk); "
        f"351 events are held in memory and will be written when the quota allows.")
    assert read_only.held(351, where) == (
        "The file system of ~/.config/opencode is read-only; 351 events are held in memory and will be written "
        "when it is writable again.")
    assert broken.held(1, where) == (
        "The file system of ~/.config/opencode failed to write (Input/output error); 1 event is held in memory "
        "and will be written when it works again.")
    assert quota.recovered(351, where) == (
        "Space returned on the file system of ~/.config/opencode: the 351 events held in memory were written.")
    assert read_only.recovered(2, where) == (
        "The file system of ~/.config/opencode is writable again: the 2 events held in memory were written.")
    assert broken.recovered(1, where) == (
        "The file system of ~/.config/opencode works again: the 1 event held in memory was written.")
    assert read_only.nothing_written() == (
        f"The database refused the write: the file system of {display(tmp_path)} is read-only. Nothing was written.")


def test_display_names_the_home_directory_as_a_tilde(isolated_home: Path) -> None:
    assert display(isolated_home / ".config" / "opencode") == "~/.config/opencode"
    assert display("/elsewhere/x") == "/elsewhere/x"
