"""Small real file systems for tests: tmpfs mounts in a private mount namespace.

``unshare --user --map-root-user --mount`` gives an unprivileged process its own mount namespace,
where it may mount a size-limited tmpfs; a sleeping process holds the namespace open, bridges join
it with ``nsenter`` (so a restarted bridge sees the same mounts), and this test process reaches the
files through ``/proc/<holder>/root``. Filling a mount is writing a file until ENOSPC; "freeing
space" is a remount with a larger size. Where user namespaces are not allowed, ``require()`` skips
the test and says why.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping

import pytest

from bridge.rpc.client import BridgeProcess

from .bridges import ROOT

ENTER = ("nsenter", "--user", "--mount", "--preserve-credentials", "-t")


def enter(pid: int) -> tuple[str, ...]:
    """The command prefix that runs a program in the namespace of ``pid``."""
    return (*ENTER, str(pid))


def _probe() -> str | None:
    """Why tmpfs mounts in a user namespace cannot be used here (None: they can)."""
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} (util-linux) is not installed"
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         "mount -t tmpfs -o size=64k tmpfs /mnt && mount -o remount,size=128k /mnt"],
        capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return ("a size-limited tmpfs in a user + mount namespace is not permitted here "
                f"(unshare --user --map-root-user --mount: {probe.stderr.strip()[:200]})")
    return None


_WHY_NOT: list[str | None] = []


def require() -> None:
    if not _WHY_NOT:
        _WHY_NOT.append(_probe())
    if _WHY_NOT[0] is not None:
        pytest.skip(_WHY_NOT[0])


class Mounts:
    """tmpfs mounts at existing folders, seen only by processes in one mount namespace."""

    def __init__(self, holder: asyncio.subprocess.Process):
        self.holder = holder
        self.pid = holder.pid
        self.enter = enter(holder.pid)

    @classmethod
    async def start(cls, sizes: Mapping[Path, str]) -> "Mounts":
        require()
        # In order, each folder made right before its mount: a later one may live in an earlier tmpfs.
        script = " && ".join(
            [f"mkdir -p {shlex.quote(str(folder))} && mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(folder))}"
             for folder, size in sizes.items()] or ["true"])
        holder = await asyncio.create_subprocess_exec(
            "unshare", "--user", "--map-root-user", "--mount", "sh", "-c", f"{script} && echo ready && exec sleep 3600",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert holder.stdout is not None and holder.stderr is not None
        line = await asyncio.wait_for(holder.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError(f"mounting failed: {(await holder.stderr.read()).decode()[:500]}")
        return cls(holder)

    def outside(self, path: Path) -> Path:
        """The same file, as this (outside) process reaches it."""
        return Path(f"/proc/{self.pid}/root{path}")

    def run(self, command: str) -> None:
        subprocess.run([*enter(self.pid), "sh", "-c", command], check=True, timeout=60,
                       capture_output=True)

    def resize(self, folder: Path, size: str) -> None:
        """Free space: the same tmpfs, remounted larger (or smaller)."""
        self.run(f"mount -o remount,size={size} {shlex.quote(str(folder))}")

    def bind_read_only(self, folder: Path) -> None:
        """Make ``folder`` read-only for every later open by path (open files keep writing)."""
        quoted = shlex.quote(str(folder))
        self.run(f"mount --bind {quoted} {quoted} && mount -o remount,bind,ro {quoted}")

    def unbind(self, folder: Path) -> None:
        self.run(f"umount {shlex.quote(str(folder))}")

    def fill(self, folder: Path, name: str = "filler") -> int:
        """Write a file until the file system is full; returns the bytes written."""
        written = 0
        with open(self.outside(folder / name), "ab", buffering=0) as handle:
            block = b"\0" * 4096
            while True:
                try:
                    count = handle.write(block)
                except OSError:
                    return written
                if not count:
                    return written
                written += count

    def free_bytes(self, folder: Path) -> int:
        stats = os.statvfs(self.outside(folder))
        return stats.f_bavail * stats.f_frsize

    async def spawn_bridge(self, env: dict[str, str]) -> BridgeProcess:
        """``python -m bridge serve`` inside the namespace (it sees the mounts), stdio piped to us."""
        # --wd: entering a mount namespace resets the working directory to its root, and
        # ``python -m bridge`` must import this checkout's bridge.
        process = await asyncio.create_subprocess_exec(
            *enter(self.pid), f"--wd={ROOT}", sys.executable, "-m", "bridge", "serve",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=env, cwd=str(ROOT))
        return BridgeProcess(process)

    async def close(self) -> None:
        if self.holder.returncode is None:
            self.holder.kill()
        await self.holder.wait()
