"""Another process holding the database's LMDB write lock, for as long as a test wants.

LMDB lets one writer in at a time across processes; a bridge that flushes meanwhile waits. The
holder is a real second process (py-lmdb, one write transaction begun and left open), released by
closing its stdin.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Sequence

HOLD = """
import lmdb, sys
env = lmdb.open(sys.argv[1], subdir=False, max_dbs=16, map_size=1 << 20)
txn = env.begin(write=True)
print("held", flush=True)
sys.stdin.read()
txn.abort()
env.close()
"""


class WriteLock:
    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process

    @classmethod
    async def take(cls, database: Path, enter: Sequence[str] = ()) -> "WriteLock":
        """Returns once the other process holds the lock (``enter``: e.g. nsenter into a namespace)."""
        process = await asyncio.create_subprocess_exec(
            *enter, sys.executable, "-c", HOLD, str(database),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        if line != b"held\n":
            raise RuntimeError(f"could not take the write lock: {(await process.stderr.read()).decode()[-500:]}")
        return cls(process)

    async def release(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            await asyncio.wait_for(self.process.wait(), 60)

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
