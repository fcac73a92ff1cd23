"""Grades and bugs counted in a forked helper process while the parent counts sessions and commits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import BridgeConfig
from ..store import Store
from .bugs import collect_bugs
from .attribution import Scope, Totals
from .collect import collect_grades
from .decode import codec_named
from .score import AGENT_GRADE_COUNTS, AGENT_N, AGENT_SUM, BAD, BUGS, EXCELLENT, REVERTS, USER_GRADE_COUNTS, USER_N, USER_SUM

# -- a helper process ------------------------------------------------------------------------------

HELPER_THRESHOLD = 20_000  # grades + activities from which the helper process pays off



class Helper:
    """Grades and bugs counted in a forked child while the parent counts sessions and commits.

    The child opens its own LMDB environment (an inherited one must not be used after fork),
    ends its read transaction and closes it before ``os._exit`` (no other cleanup runs in the
    child: it never touches the parent's stores, files or output), and sends back its partial sums
    with the id of the snapshot it read. The parent uses them only if its own read transaction
    saw the same snapshot; otherwise (a bridge committed in between), or if anything went wrong
    in the child, the parent counts grades and bugs itself. The sums land in accumulator slots
    the parent does not touch, so the result is bit-for-bit the sequential one.
    """

    def __init__(self, pid: int, fd: int):
        self.pid = pid
        self.fd = fd

    @classmethod
    def start(cls, store: Store, scope_args: tuple[Any, ...], codec_name: str) -> "Helper | None":
        import threading

        if not hasattr(os, "fork") or threading.active_count() > 1 or (os.cpu_count() or 1) < 2:
            return None  # fork() in a threaded process (the bridge) is not safe; one CPU gains nothing
        with store.read() as view:  # ended before the fork: the child never shares a transaction
            if view.count("communication") + view.count("activities") < HELPER_THRESHOLD:
                return None  # small databases: a process costs more than it saves
        path, map_size = store.path, store.map_size
        try:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
        except OSError:
            return None
        if pid == 0:  # the child
            code = 1
            try:
                os.close(read_fd)
                # py-lmdb refuses a second environment on the same file in one process: close the
                # inherited copy first. LMDB's close only clears reader slots of the calling pid and
                # this process holds no file locks, so the parent's environment is unaffected.
                inherited = store._env  # noqa: SLF001
                if inherited is not None:
                    inherited.close()
                code = _helper_main(path, map_size, scope_args, codec_name, write_fd)
            finally:
                os._exit(code)
        os.close(write_fd)
        return cls(pid, read_fd)

    def result(self) -> dict[str, Any] | None:
        import pickle

        chunks = []
        try:
            while True:
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self.fd)
            _, status = os.waitpid(self.pid, 0)
        if status != 0 or not chunks:
            return None
        try:
            part: dict[str, Any] = pickle.loads(b"".join(chunks))
        except Exception:
            return None
        return part

    def cancel(self) -> None:
        import signal

        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except OSError:
            pass



def _helper_main(path: Path, map_size: int, scope_args: tuple[Any, ...], codec_name: str, fd: int) -> int:
    import pickle

    store = Store.open(BridgeConfig(database_path=str(path), max_database_size=map_size), readonly=True)
    if not store.available:
        return 2
    try:
        with store.read() as view:
            scope = Scope(view, *scope_args)
            totals = Totals()
            codec = codec_named(codec_name)
            collect_grades(view, scope, totals, codec, None, False)
            collect_bugs(view, scope, totals, None)
            payload = pickle.dumps({"txn": view.txn_id(), "acc": totals.acc,  # noqa: SLF001
                                    "grades": totals.counts["grades"], "bugs": totals.counts["bugs"],
                                    "unattributed": totals.unattributed_bugs, "paths": scope.paths},
                                   protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        store.close()
    view_of_payload = memoryview(payload)
    while view_of_payload:
        written = os.write(fd, view_of_payload)
        view_of_payload = view_of_payload[written:]
    os.close(fd)
    return 0



def merge_helper_result(totals: Totals, scope: Scope, part: dict[str, Any]) -> None:
    for setup, acc in part["acc"].items():
        mine = totals.acc.get(setup)
        if mine is None:
            totals.acc[setup] = acc
        else:
            for index in (AGENT_SUM, AGENT_N, USER_SUM, USER_N, EXCELLENT, BAD, BUGS, REVERTS,
                          *USER_GRADE_COUNTS.values(), *AGENT_GRADE_COUNTS.values()):
                mine[index] += acc[index]
    totals.counts["grades"] += part["grades"]
    totals.counts["bugs"] += part["bugs"]
    totals.unattributed_bugs += part["unattributed"]
    for setup, paths in part["paths"].items():
        scope.paths.setdefault(setup, set()).update(paths)
