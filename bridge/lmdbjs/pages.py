"""The on-disk layout of lmdb-js' LMDB fork ("data format v2") and a B-tree walker.

lmdb-js bundles LMDB's 1.0 development branch (``dependencies/lmdb/libraries/liblmdb/
mdb.c``), whose file format differs from the LMDB 0.9 that py-lmdb reads:

* Page header is 24 bytes: ``pgno u64, txnid u64, pad u16, flags u16,
  lower u16, upper u16`` (overflow pages: ``pages u32`` instead of lower/upper).
  0.9 has 16 bytes (no txnid).
* ``PAGEBASE == PAGEHDRSZ``: ``mp_lower`` and the node offsets in ``mp_ptrs`` count
  from the end of the header, so ``NUMKEYS = lower >> 1`` and node ``i`` is at
  ``24 + ptrs[i]``.
* A leaf node's overflow reference (``F_BIGDATA``) is an ``MDB_ovpage`` of 24 bytes
  (``pgno, txnid, pages``), not a bare 8-byte page number.
* Meta pages 0 and 1 (``MDB_meta`` after the header): magic 0xBEEFC0DE, version 2,
  two ``MDB_db`` records (free DB, main DB) of 48 bytes, last page, txnid, boot id.
  The page size is the free DB's ``md_pad``; env flags are its ``md_flags``.
  lmdb-js' "overlapping sync" also keeps a copy of the last *flushed* meta half-way
  into page 0; it only matters for crash recovery and is not used here.
* Named databases are main-DB leaf nodes with ``F_SUBDATA`` whose key is the name
  *including* its terminating NUL byte (``size = strlen(name) + 1``).

Everything is little-endian, 64-bit (the only layout lmdb-js' prebuilt binaries write).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from .types import ForeignFormatError

PAGE_HEADER_SIZE = 24
META_OFFSET = PAGE_HEADER_SIZE
MDB_MAGIC = 0xBEEFC0DE
DATA_VERSION = 2
P_INVALID = 0xFFFFFFFFFFFFFFFF

# page flags
P_BRANCH = 0x01
P_LEAF = 0x02
P_OVERFLOW = 0x04
P_META = 0x08
P_LEAF2 = 0x20
P_SUBP = 0x40

# node flags
F_BIGDATA = 0x01
F_SUBDATA = 0x02
F_DUPDATA = 0x04

# database flags (md_flags)
MDB_REVERSEKEY = 0x02
MDB_DUPSORT = 0x04
MDB_INTEGERKEY = 0x08
MDB_DUPFIXED = 0x10
MDB_INTEGERDUP = 0x20
MDB_REVERSEDUP = 0x40
# environment flag stored in the free DB's md_flags
MDB_ENCRYPT = 0x2000

_PAGE_HEADER = struct.Struct("<QQHHHH")
_OVERFLOW_PAGES = struct.Struct("<I")
_NODE = struct.Struct("<HHHH")
_OVPAGE = struct.Struct("<QQQ")
_DB = struct.Struct("<IHHQQQQQ")
_META_HEAD = struct.Struct("<II")
_META = struct.Struct("<IIQQ48s48sQQq")
META_SIZE = _META.size  # 136 bytes
_U16 = struct.Struct("<H")


@dataclass(frozen=True, slots=True)
class DbRecord:
    """An ``MDB_db``: where a database's B-tree starts and what it should contain."""

    pad: int
    flags: int
    depth: int
    branch_pages: int
    leaf_pages: int
    overflow_pages: int
    entries: int
    root: int

    @classmethod
    def parse(cls, raw: bytes) -> DbRecord:
        return cls(*_DB.unpack(raw))


@dataclass(frozen=True, slots=True)
class Meta:
    """One meta page: the root of one committed snapshot."""

    page: int  # 0 or 1
    page_size: int
    env_flags: int
    map_size: int
    free_db: DbRecord
    main_db: DbRecord
    last_pgno: int
    txnid: int
    raw: bytes  # the MDB_meta bytes, to detect that the page changed while we read


def describe_foreign(header: bytes) -> str | None:
    """Explain what a non-lmdb-js file looks like, or None if page 0 is an lmdb-js meta."""
    if len(header) < META_OFFSET + 8:
        return f"file is too small ({len(header)} bytes) to be an LMDB database"
    if _META_HEAD.unpack_from(header, 16)[0] == MDB_MAGIC:
        version = _META_HEAD.unpack_from(header, 16)[1]
        return (
            f"standard LMDB file (data format v{version & 0xFFFF}, 16-byte page headers), "
            "not one written by lmdb-js: open it with py-lmdb instead"
        )
    magic, version = _META_HEAD.unpack_from(header, META_OFFSET)
    if magic == int.from_bytes(MDB_MAGIC.to_bytes(4, "little"), "big"):
        return "LMDB file written on a big-endian machine; only little-endian files are supported"
    if magic != MDB_MAGIC:
        return "no LMDB magic number in page 0: not an LMDB database"
    if (version & 0xFFFF) != DATA_VERSION:
        return f"LMDB data format v{version & 0xFFFF}, expected lmdb-js' v{DATA_VERSION}"
    flags = _PAGE_HEADER.unpack_from(header, 0)[3]
    if not flags & P_META:
        return "page 0 is not a meta page: corrupt or not an LMDB database"
    return None


def parse_meta(buf: bytes, offset: int, page: int, page_size: int | None) -> Meta:
    """Parse the meta page at ``offset``; raises ForeignFormatError if it is not one."""
    if len(buf) < offset + META_OFFSET + META_SIZE:
        raise ForeignFormatError(f"meta page {page} is truncated")
    pgno, _txnid, _pad, flags, _lower, _upper = _PAGE_HEADER.unpack_from(buf, offset)
    raw = bytes(buf[offset + META_OFFSET : offset + META_OFFSET + META_SIZE])
    magic, version, _address, map_size, free_raw, main_raw, last_pgno, txnid, _boot = (
        _META.unpack(raw)
    )
    if magic != MDB_MAGIC or (version & 0xFFFF) != DATA_VERSION:
        raise ForeignFormatError(f"meta page {page} has no lmdb-js magic/version")
    if not flags & P_META or pgno != page:
        raise ForeignFormatError(f"meta page {page} has a bad page header")
    free_db = DbRecord.parse(free_raw)
    size = free_db.pad
    if size < 512 or size > 0x10000 or size & (size - 1):
        raise ForeignFormatError(f"meta page {page} has an impossible page size {size}")
    if page_size is not None and size != page_size:
        raise ForeignFormatError(f"meta pages disagree on the page size ({page_size} vs {size})")
    return Meta(
        page=page,
        page_size=size,
        env_flags=free_db.flags,
        map_size=map_size,
        free_db=free_db,
        main_db=DbRecord.parse(main_raw),
        last_pgno=last_pgno,
        txnid=txnid,
        raw=raw,
    )


def parse_metas(buf: bytes) -> tuple[Meta, Meta]:
    """Both meta pages from a buffer that starts at the file's beginning."""
    problem = describe_foreign(buf)
    if problem:
        raise ForeignFormatError(problem)
    meta0 = parse_meta(buf, 0, 0, None)
    meta1 = parse_meta(buf, meta0.page_size, 1, meta0.page_size)
    return meta0, meta1


def newest(metas: tuple[Meta, Meta]) -> Meta:
    """The meta LMDB itself would use: the higher txnid (page 0 on a tie)."""
    meta0, meta1 = metas
    return meta0 if meta0.txnid >= meta1.txnid else meta1


@dataclass(slots=True)
class Leaf:
    """One leaf node: key, data (overflow data already resolved) and node flags."""

    key: bytes
    data: bytes
    flags: int


class TreeWalker:
    """Walks B-trees of one snapshot held in memory, validating as it goes.

    Corruption (bad page numbers, cycles, impossible offsets, wrong page types or
    entry counts) raises ForeignFormatError instead of looping or crashing.
    """

    def __init__(self, buf: bytes, meta: Meta) -> None:
        self.buf = buf
        self.page_size = meta.page_size
        self.last_pgno = meta.last_pgno
        # pages we can actually address in the copy we have
        self.page_count = min(len(buf) // meta.page_size, meta.last_pgno + 1)
        self._seen: set[int] = set()

    def _page_offset(self, pgno: int, what: str, count: int = 1) -> int:
        if pgno < 2 or pgno + count > self.page_count:
            raise ForeignFormatError(
                f"{what} refers to page {pgno}"
                + (f"..{pgno + count - 1}" if count > 1 else "")
                + f", outside the snapshot's {self.page_count} pages"
            )
        return pgno * self.page_size

    def _claim(self, pgno: int, count: int, what: str) -> None:
        # every page belongs to at most one place in a snapshot: a repeat is a cycle
        for number in range(pgno, pgno + count):
            if number in self._seen:
                raise ForeignFormatError(f"{what}: page {number} is referenced twice (cycle?)")
            self._seen.add(number)

    def leaves(self, db: DbRecord, name: str) -> Iterator[Leaf]:
        """All leaf nodes of one database, in key order."""
        if db.root == P_INVALID:
            if db.entries:
                raise ForeignFormatError(f"{name}: empty tree but {db.entries} entries recorded")
            return
        if db.depth < 1 or db.depth > 64:
            raise ForeignFormatError(f"{name}: impossible tree depth {db.depth}")
        buf = self.buf
        page_size = self.page_size
        unpack_node = _NODE.unpack_from
        unpack_u16 = _U16.unpack_from
        count = 0
        # stack of (pgno, depth); children are pushed in reverse to visit in key order
        stack = [(db.root, 1)]
        while stack:
            pgno, depth = stack.pop()
            offset = self._page_offset(pgno, name)
            self._claim(pgno, 1, name)
            header_pgno, _txnid, _pad, flags, lower, upper = _PAGE_HEADER.unpack_from(buf, offset)
            if header_pgno != pgno:
                raise ForeignFormatError(f"{name}: page {pgno} says it is page {header_pgno}")
            is_leaf = bool(flags & P_LEAF)
            if flags & (P_LEAF2 | P_SUBP | P_OVERFLOW | P_META) or is_leaf == bool(flags & P_BRANCH):
                raise ForeignFormatError(f"{name}: page {pgno} has unexpected flags 0x{flags:x}")
            if is_leaf != (depth == db.depth):
                raise ForeignFormatError(
                    f"{name}: page {pgno} at depth {depth} of {db.depth} is a "
                    + ("leaf" if is_leaf else "branch")
                )
            numkeys = lower >> 1
            if lower & 1 or PAGE_HEADER_SIZE + lower > PAGE_HEADER_SIZE + upper or (
                PAGE_HEADER_SIZE + upper > page_size
            ):
                raise ForeignFormatError(f"{name}: page {pgno} has bad bounds {lower}/{upper}")
            if numkeys == 0 and not (is_leaf and depth == 1):
                raise ForeignFormatError(f"{name}: page {pgno} is empty")
            page_end = offset + page_size
            children = []
            for index in range(numkeys):
                node = offset + PAGE_HEADER_SIZE + unpack_u16(buf, offset + PAGE_HEADER_SIZE + 2 * index)[0]
                if node < offset + PAGE_HEADER_SIZE + lower or node + 8 > page_end:
                    raise ForeignFormatError(f"{name}: page {pgno} node {index} is out of bounds")
                lo, hi, node_flags, ksize = unpack_node(buf, node)
                key_start = node + 8
                key_end = key_start + ksize
                if key_end > page_end:
                    raise ForeignFormatError(f"{name}: page {pgno} node {index} key overruns the page")
                if not is_leaf:
                    children.append(lo | (hi << 16) | (node_flags << 32))
                    continue
                size = lo | (hi << 16)
                if node_flags & F_BIGDATA:
                    if key_end + _OVPAGE.size > page_end:
                        raise ForeignFormatError(f"{name}: page {pgno} node {index} is truncated")
                    ov_pgno, _ov_txnid, ov_pages = _OVPAGE.unpack_from(buf, key_end)
                    data = self._overflow(ov_pgno, ov_pages, size, name)
                else:
                    if key_end + size > page_end:
                        raise ForeignFormatError(
                            f"{name}: page {pgno} node {index} data overruns the page"
                        )
                    data = buf[key_end : key_end + size]
                count += 1
                yield Leaf(buf[key_start:key_end], data, node_flags)
            for child in reversed(children):
                stack.append((child, depth + 1))
        if count != db.entries:
            raise ForeignFormatError(
                f"{name}: found {count} entries but the database records {db.entries}"
            )

    def _overflow(self, pgno: int, pages: int, size: int, name: str) -> bytes:
        page_size = self.page_size
        needed = (PAGE_HEADER_SIZE - 1 + size) // page_size + 1  # OVPAGES() in mdb.c
        if pages < needed:
            raise ForeignFormatError(
                f"{name}: {size}-byte value claims {pages} overflow pages, needs {needed}"
            )
        offset = self._page_offset(pgno, name, pages)
        header_pgno, _txnid, _pad, flags = _PAGE_HEADER.unpack_from(self.buf, offset)[:4]
        stored_pages = _OVERFLOW_PAGES.unpack_from(self.buf, offset + 20)[0]
        if header_pgno != pgno or not flags & P_OVERFLOW or stored_pages < needed:
            raise ForeignFormatError(f"{name}: page {pgno} is not the expected overflow page")
        self._claim(pgno, pages, name)
        start = offset + PAGE_HEADER_SIZE
        return self.buf[start : start + size]
