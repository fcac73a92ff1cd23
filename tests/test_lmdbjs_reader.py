"""Tests for bridge.lmdbjs, the pure-Python reader for lmdb-js (npm ``lmdb``) databases.

The fixtures in tests/fixtures/lmdbjs were written by the real npm package
(generate.mjs); expected.json holds what lmdb-js itself reads back from them. Tests
that need node (regeneration, a live writer) run when node and the fixture folder's
node_modules exist (``npm ci`` there), and are skipped otherwise.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import struct
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bridge.lmdbjs import (
    ConcurrentWriteError,
    DecodeError,
    Decoder,
    ForeignFormatError,
    InvalidDate,
    JsError,
    JsRegExp,
    JsTypedArray,
    LmdbJsError,
    LmdbJsSnapshot,
    Symbol,
    Undefined,
    compression,
    is_lmdbjs_file,
    keys,
    pages,
    snapshot,
)

FIXTURES = Path(__file__).parent / "fixtures" / "lmdbjs"


def _js_int(text: str) -> int | float:
    # JSON numbers written by JavaScript are doubles: an integer literal beyond 2**53 is the
    # shortest decimal that round-trips the double (2**60 is written 1152921504606847000)
    value = int(text)
    return value if abs(value) <= 2**53 else float(text)


def load_expected(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"), parse_int=_js_int)


EXPECTED = load_expected(FIXTURES / "expected.json")
FIXTURE_NAMES = sorted(EXPECTED["fixtures"])
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
NODE = shutil.which("node")
HAS_NODE_MODULES = (FIXTURES / "node_modules" / "lmdb" / "package.json").exists()
needs_node = pytest.mark.skipif(
    not (NODE and HAS_NODE_MODULES),
    reason="needs node and tests/fixtures/lmdbjs/node_modules (npm ci there)",
)


# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Never let anything here touch the real home directory."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))


def from_expected(value: Any) -> Any:
    """expected.json's conventions (see generate.mjs) -> the Python values the reader returns."""
    if isinstance(value, list):
        return [from_expected(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get("$")
    if tag is None:
        return {k: from_expected(v) for k, v in value.items()}
    v = value.get("v")
    if tag == "undefined":
        return Undefined
    if tag == "num":
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}[v]
    if tag == "bigint":
        return int(v)
    if tag == "date":
        if v is None:
            return InvalidDate
        try:
            return EPOCH + timedelta(milliseconds=v)
        except OverflowError:
            return ("unrepresentable date", v)
    if tag == "symbol":
        return Symbol(v)
    if tag == "bytes":
        return bytes.fromhex(v)
    if tag == "map":
        return {_hashable(from_expected(k)): from_expected(x) for k, x in v}
    if tag == "set":
        return set(from_expected(v))
    if tag == "error":
        return JsError(*from_expected(v))
    if tag == "regexp":
        return JsRegExp(*v)
    if tag == "typed":
        return JsTypedArray(v[0], bytes.fromhex(v[1]))
    if tag == "repeat":
        return v[0] * v[1]
    raise AssertionError(f"unknown expected.json tag {tag!r}")


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def same(actual: Any, expected: Any, where: str = "value") -> None:
    """Exact comparison: floats bit-for-bit (NaN and -0.0 included), int == float only when equal."""
    if isinstance(expected, float) or isinstance(actual, float):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), where
        if isinstance(expected, float) and math.isnan(expected):
            assert isinstance(actual, float) and math.isnan(actual), f"{where}: {actual!r} != NaN"
            return
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"
        if isinstance(actual, float) and isinstance(expected, float):
            assert struct.pack(">d", actual) == struct.pack(">d", expected), where
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not a dict"
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for k in expected:
            same(actual[k], expected[k], f"{where}.{k}")
        return
    if isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: {actual!r} is not a list"
        assert len(actual) == len(expected), f"{where}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            same(a, e, f"{where}[{i}]")
        return
    assert type(actual) is type(expected) or (
        isinstance(actual, int) and isinstance(expected, int) and not isinstance(actual, bool)
    ), f"{where}: type {type(actual).__name__} != {type(expected).__name__}"
    assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def compare_with_expected(snap: LmdbJsSnapshot, fixture: dict, label: str) -> int:
    """Assert the snapshot holds exactly the expected databases/entries; returns entry count."""
    expected_dbs = {db["name"]: db for db in fixture["databases"]}
    assert set(snap.databases) == set(expected_dbs), label
    checked = 0
    for name, db in expected_dbs.items():
        entries = snap.databases[name]
        if db.get("unsupported"):
            assert entries == []
            assert any(repr(name) in e and db["unsupported"].lower() in e.lower() for e in snap.errors)
            continue
        assert [e.raw_key.hex() for e in entries] == [x["raw_key"] for x in db["entries"]], (
            f"{label} {name}: keys differ"
        )
        for entry, exp in zip(entries, db["entries"]):
            where = f"{label} {name} {entry.key!r}"
            same(entry.key, from_expected(exp["key"]), where + " key")
            if exp.get("python_error"):
                assert entry.value is None and entry.error and "date" in entry.error, where
                continue
            assert entry.error is None, f"{where}: {entry.error}"
            same(entry.value, from_expected(exp["value"]), where)
            checked += 1
    return checked


def read_fixture(name: str) -> LmdbJsSnapshot:
    return LmdbJsSnapshot.read(FIXTURES / name)


def node_run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [NODE, str(FIXTURES / "generate.mjs"), *args],
        cwd=FIXTURES,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )


# ---------------------------------------------------------------- fixtures round-trip


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_matches_what_lmdbjs_reads(name):
    fixture = EXPECTED["fixtures"][name]
    snap = read_fixture(name)
    assert snap.page_size == fixture["page_size"]
    assert snap.txnid > 0 or name == "empty.mdb"
    compare_with_expected(snap, fixture, name)
    unexpected = [e for e in snap.errors if "dupSort" not in e and "could not be decoded" not in e]
    assert unexpected == []


def test_fixtures_cover_what_they_claim():
    """The fixtures really contain the hard cases (so the round-trip test means something)."""
    stats = {}
    for name in FIXTURE_NAMES:
        buf = (FIXTURES / name).read_bytes()
        metas = pages.parse_metas(buf)
        meta = pages.newest(metas)
        walker = pages.TreeWalker(buf, meta)
        leaves = list(walker.leaves(meta.main_db, "main"))
        for leaf in list(leaves):
            if leaf.flags & pages.F_SUBDATA and not pages.DbRecord.parse(leaf.data).flags & pages.MDB_DUPSORT:
                leaves.extend(walker.leaves(pages.DbRecord.parse(leaf.data), "sub"))
        values = [bytes(leaf.data) for leaf in leaves if not leaf.flags & pages.F_SUBDATA]
        stats[name] = {
            "overflow": sum(1 for leaf in leaves if leaf.flags & pages.F_BIGDATA),
            "fe": sum(1 for v in values if len(v) > 1 and v[0] == 0xFE),
            "ff": sum(1 for v in values if len(v) > 1 and v[0] == 0xFF),
        }
    # values over 2 KB end up in overflow pages, compressed or not
    for name in ("flat.mdb", "flat-lmdb2.mdb", "flat-16k.mdb", "subdbs.mdb", "subdbs-uncompressed.mdb"):
        assert stats[name]["overflow"] > 0, name
    assert stats["flat.mdb"]["fe"] > 0 and stats["subdbs.mdb"]["fe"] > 0
    assert stats["subdbs-uncompressed.mdb"]["fe"] == 0
    assert stats["misc.mdb"]["ff"] == 1  # the > 16 MiB value: 8-byte compression header
    # more than 32 shapes in one sub-database: shared ids are full, the rest are inline
    many = read_fixture("misc.mdb").databases["many-shapes"]
    shared = [e.value for e in many if isinstance(e.key, Symbol)]
    assert len(shared) == 1 and len(shared[0]) == 32
    shapes = {tuple(e.value["details"]) for e in many if not isinstance(e.key, Symbol)}
    shapes |= {tuple(e.value) for e in many if not isinstance(e.key, Symbol)}
    assert len(shapes) > 32
    # the plugin's sub-databases each have their shared structures record
    plugin = read_fixture("subdbs.mdb").databases
    for name in ("agents", "commits", "communication", "retrospectives", "activities", "migrations", "projects"):
        assert sum(isinstance(e.key, Symbol) and e.key == Symbol(f"structures:{name}") for e in plugin[name]) == 1


def test_public_api_types():
    snap = read_fixture("flat.mdb")
    assert isinstance(snap.txnid, int)
    assert list(snap.databases) == [None]
    entry = snap.databases[None][0]
    assert isinstance(entry.raw_key, bytes) and entry.error is None
    assert entry.key == entry.raw_key.decode()
    kinds = {e.key.split(":", 1)[0] for e in snap.databases[None]}
    assert kinds == {"agent", "commit", "communication"}
    commit = next(e for e in snap.databases[None] if e.key.startswith("commit:C:\\Users"))
    # project paths contain ':' - keys are commit:<projectPath>:<hash>
    assert commit.key == f"commit:{commit.value['project_path']}:{commit.value['commit_hash']}"


def test_floats_and_dates_are_exact():
    snap = read_fixture("flat.mdb")
    agents = {e.value["id"]: e.value for e in snap.databases[None] if e.key.startswith("agent:")}
    scores = [a["communication_score"] for a in agents.values()]
    assert 23.7 in scores and 0.30000000000000004 in scores and -1.5 in scores and -3 in scores
    assert type(next(s for s in scores if s == 23.7)) is float and type(next(s for s in scores if s == -3)) is int
    assert {a["skill_points"] for a in agents.values()} >= {2.7, -0.5, 0, -1}
    assert 5e-324 in {a["experience_points"] for a in agents.values()}
    assert any(a["active"] is False and a["skill_points"] > 0 for a in agents.values())
    assert {a["created_at"] for a in agents.values()} >= {
        datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc),
        datetime(2106, 2, 7, 6, 28, 16, tzinfo=timezone.utc)}
    commits = [e.value for e in snap.databases[None] if e.key.startswith("commit:")]
    stamps = {c["timestamp"] for c in commits}
    for expected in (
        datetime(1969, 7, 20, 20, 17, 40, tzinfo=timezone.utc),
        datetime(1600, 2, 29, 12, 0, 0, 1000, tzinfo=timezone.utc),
        datetime(1, 1, 1, tzinfo=timezone.utc),
        datetime(2106, 2, 7, 6, 28, 16, tzinfo=timezone.utc),
        datetime(2200, 1, 1, 0, 0, 0, 123000, tzinfo=timezone.utc),
        datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc),
    ):
        assert expected in stamps
    assert all(s.tzinfo is timezone.utc for s in stamps)
    assert any(c["task_description"] == "" for c in commits)
    assert max(len(c["task_description"]) for c in commits) > 4000
    grades = [e.value for e in snap.databases[None] if e.key.startswith("communication:")]
    assert any("reason" not in g for g in grades) and any("reason" in g for g in grades)


def test_misc_values():
    snap = read_fixture("misc.mdb")
    values = {e.key: e for e in snap.databases["values"]}
    assert values["v:undefined"].value is Undefined
    assert values["v:null"].value is None
    assert values["v:minus-one"].value == -1
    assert values["v:date-invalid"].value is InvalidDate
    assert values["v:date-max"].value is None and "outside" in values["v:date-max"].error
    assert len(values["v:huge"].value) > 16 * 1024 * 1024 // 2
    zoo = values["v:shape-zoo"].value
    assert [sorted(o) for o in zoo[:2]] == [["common", "shape0"], ["common", "shape1"]]
    assert zoo[-1] == {"shape0": "again", "common": "first shape reused"}
    more = {e.key: e.value for e in snap.databases["more-types"]}
    assert more["set"] == {1, "two", 3.5}
    assert more["error"] == JsError("TypeError", "bad type", Undefined)
    assert more["regexp"] == JsRegExp("x+y?", "m")
    assert struct.unpack("<2d", more["float64array"].data) == (1.5, -2.25)
    assert more["negative-bigint"] == -(2**90)
    refs = snap.databases["cloned"][0].value
    assert refs["a"] is refs["b"] is refs["list"][0]
    keys_db = [e.key for e in snap.databases["keys"]]
    assert None in keys_db and True in keys_db and False in keys_db
    assert Symbol("meta") in keys_db and 2**70 + 1 in keys_db
    assert ["a", "nested", 3] in keys_db  # nested array keys come back flattened, as in lmdb-js
    assert any("dupSort" in e and "'dupsort'" in e for e in snap.errors)
    assert snap.databases["empty"] == []


# ---------------------------------------------------------------- read-only guarantees


def _fingerprint(path: Path) -> tuple[bytes, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, st.st_size


def test_reading_never_modifies_the_file_or_its_lock(tmp_path):
    db = tmp_path / "history.mdb"
    lock = tmp_path / "history.mdb-lock"
    shutil.copyfile(FIXTURES / "subdbs.mdb", db)
    lock.write_bytes(os.urandom(8272))
    os.utime(db, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    os.utime(lock, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    before = (_fingerprint(db), _fingerprint(lock))
    assert is_lmdbjs_file(db)
    LmdbJsSnapshot.read(db)
    LmdbJsSnapshot.read(str(db))
    assert (_fingerprint(db), _fingerprint(lock)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.mdb", "history.mdb-lock", "home"]


@needs_node
def test_reading_a_real_lmdbjs_environment_leaves_data_and_lock_untouched(tmp_path):
    db = tmp_path / "live.mdb"
    shutil.copyfile(FIXTURES / "flat.mdb", db)
    # let lmdb-js open it (creating its real lock file) and write a little
    node_run("--live", str(db), "--duration-ms", "300", "--interval-ms", "10", "--batch", "3")
    lock = Path(str(db) + "-lock")
    assert lock.exists()
    before = (_fingerprint(db), _fingerprint(lock))
    snap = LmdbJsSnapshot.read(db)
    assert any(e.key == "live:head" for e in snap.databases[None])
    assert (_fingerprint(db), _fingerprint(lock)) == before


# ---------------------------------------------------------------- live writer


def _check_live_snapshot(snap: LmdbJsSnapshot, batch: int) -> int:
    entries = snap.databases[None]
    assert all(e.error is None for e in entries), [e.error for e in entries if e.error][:3]
    heads = [e.value for e in entries if e.key == "live:head"]
    if not heads:
        assert not any(str(e.key).startswith("live:") for e in entries)
        return 0
    head = heads[0]["batch"]
    batches: dict[int, list[int]] = {}
    for e in entries:
        if isinstance(e.key, str) and e.key.startswith("live:") and e.key != "live:head":
            _, number, index = e.key.split(":")
            assert e.value["batch"] == int(number) and e.value["i"] == int(index)
            batches.setdefault(int(number), []).append(int(index))
    assert sorted(batches) == list(range(max(1, head - 9), head + 1)), (head, sorted(batches))
    for indexes in batches.values():
        assert sorted(indexes) == list(range(batch))
    # the original fixture content is untouched by the writer
    assert sum(1 for e in entries if str(e.key).startswith("agent:")) == 24  # flat.mdb's agents
    return head


@needs_node
def test_reads_stay_consistent_while_lmdbjs_keeps_writing(tmp_path):
    db = tmp_path / "live.mdb"
    shutil.copyfile(FIXTURES / "flat.mdb", db)
    batch = 15
    writer = subprocess.Popen(
        [NODE, str(FIXTURES / "generate.mjs"), "--live", str(db), "--interval-ms", "2",
         "--duration-ms", "60000", "--batch", str(batch)],
        cwd=FIXTURES,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        heads = []
        deadline = time.monotonic() + 8
        reads = 0
        while time.monotonic() < deadline or reads < 20:
            snap = LmdbJsSnapshot.read(db, attempts=20)
            heads.append(_check_live_snapshot(snap, batch))
            reads += 1
            if reads > 400:
                break
        assert writer.poll() is None, writer.stderr.read()
    finally:
        writer.stdin.close()
        try:
            writer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            writer.kill()
            writer.wait()
    assert reads >= 20
    # the writer really was committing while we read
    assert len(set(heads)) > 5, heads
    assert heads == sorted(heads)


@needs_node
def test_a_slow_copy_racing_a_fast_writer_never_yields_a_torn_snapshot(tmp_path, monkeypatch):
    """Make copying the file slow (like a cold disk) while lmdb-js commits every millisecond.

    Without the meta-page check this returns torn copies (pages from different
    transactions: broken trees, wrong entries); with it every read is either a
    consistent snapshot or a ConcurrentWriteError, and the retries are visible.
    """
    db = tmp_path / "race.mdb"
    shutil.copyfile(FIXTURES / "flat.mdb", db)
    real_pread = snapshot._pread
    copies = {"n": 0}

    def slow_pread(handle, size, offset):
        if size <= 2 * 65536:  # meta pages
            return real_pread(handle, size, offset)
        copies["n"] += 1
        chunks = []
        for start in range(offset, offset + size, 4096):
            chunks.append(real_pread(handle, min(4096, offset + size - start), start))
            time.sleep(0.0002)
        return b"".join(chunks)

    monkeypatch.setattr(snapshot, "_pread", slow_pread)
    monkeypatch.setattr(snapshot, "_BACKOFF_SECONDS", (0.0, 0.001))
    batch = 10
    writer = subprocess.Popen(
        [NODE, str(FIXTURES / "generate.mjs"), "--live", str(db), "--interval-ms", "1",
         "--duration-ms", "60000", "--batch", str(batch)],
        cwd=FIXTURES,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    outcomes = {"consistent": 0, "busy": 0}
    try:
        assert writer.stdout.readline().strip() == "ready"
        for _ in range(25):
            try:
                snap = LmdbJsSnapshot.read(db, attempts=10)
            except ConcurrentWriteError:
                outcomes["busy"] += 1
                continue
            _check_live_snapshot(snap, batch)
            outcomes["consistent"] += 1
        assert writer.poll() is None, writer.stderr.read()
    finally:
        writer.stdin.close()
        try:
            writer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            writer.kill()
            writer.wait()
    # commits landed inside the copy window, so some copies had to be thrown away
    assert copies["n"] > 25, (copies, outcomes)


def test_retries_then_gives_up_when_every_read_races_a_commit(tmp_path, monkeypatch):
    db = tmp_path / "busy.mdb"
    shutil.copyfile(FIXTURES / "flat.mdb", db)
    real = snapshot._read_metas
    calls = {"n": 0}

    def racing(handle, path):
        metas = real(handle, path)
        calls["n"] += 1
        if calls["n"] % 2 == 0:  # the check after each copy sees a newer commit
            m = pages.newest(metas)
            changed = pages.Meta(**{**{f: getattr(m, f) for f in m.__slots__}, "raw": b"x" + m.raw[1:]})
            metas = tuple(changed if x.page == m.page else x for x in metas)
        return metas

    monkeypatch.setattr(snapshot, "_read_metas", racing)
    monkeypatch.setattr(snapshot, "_BACKOFF_SECONDS", (0.0,))
    with pytest.raises(ConcurrentWriteError, match="3 reads"):
        LmdbJsSnapshot.read(db, attempts=3)
    assert calls["n"] == 6

    calls["n"] = 0
    flaky = {"left": 2}

    def racing_twice(handle, path):
        metas = real(handle, path)
        calls["n"] += 1
        if calls["n"] % 2 == 0 and flaky["left"]:
            flaky["left"] -= 1
            m = pages.newest(metas)
            changed = pages.Meta(**{**{f: getattr(m, f) for f in m.__slots__}, "raw": b"x" + m.raw[1:]})
            metas = tuple(changed if x.page == m.page else x for x in metas)
        return metas

    monkeypatch.setattr(snapshot, "_read_metas", racing_twice)
    snap = LmdbJsSnapshot.read(db, attempts=3)
    compare_with_expected(snap, EXPECTED["fixtures"]["flat.mdb"], "after retries")


# ---------------------------------------------------------------- regeneration


def test_regenerated_fixtures_decode_to_their_expected_json(tmp_path):
    """Regenerate every fixture with the real npm package and compare what we decode.

    Runs when node and node_modules are there; AGENT_TRACKER_REGENERATE_FIXTURES=1
    makes it mandatory (installs node_modules with npm ci, fails without node).
    """
    if os.environ.get("AGENT_TRACKER_REGENERATE_FIXTURES") == "1":
        assert NODE, "AGENT_TRACKER_REGENERATE_FIXTURES=1 needs node"
        if not HAS_NODE_MODULES:
            npm = shutil.which("npm")
            assert npm, "AGENT_TRACKER_REGENERATE_FIXTURES=1 needs npm to install lmdb"
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FIXTURES, check=True, timeout=600)
    elif not (NODE and HAS_NODE_MODULES):
        pytest.skip("needs node and tests/fixtures/lmdbjs/node_modules (npm ci there)")
    node_run("--out", str(tmp_path))
    regenerated = load_expected(tmp_path / "expected.json")
    assert sorted(regenerated["fixtures"]) == FIXTURE_NAMES
    for name in FIXTURE_NAMES:
        snap = LmdbJsSnapshot.read(tmp_path / name)
        compare_with_expected(snap, regenerated["fixtures"][name], f"regenerated {name}")
        # and the generator is deterministic: same decoded content as the committed fixture
        compare_with_expected(snap, EXPECTED["fixtures"][name], f"committed {name}")


# ---------------------------------------------------------------- foreign and corrupt files


def test_truncated_file(tmp_path):
    data = bytes(single_snapshot((FIXTURES / "flat.mdb").read_bytes()))
    for size in (0, 10, 100, 4096, 4096 + 100, 3 * 4096, len(data) // 2):
        path = tmp_path / f"t{size}.mdb"
        path.write_bytes(data[:size])
        with pytest.raises(ForeignFormatError) as info:
            LmdbJsSnapshot.read(path)
        assert str(path) in str(info.value)
        assert is_lmdbjs_file(path) == (size >= 2 * 4096)
    # LMDB files may legitimately end before their last page when the tail is free
    # space: losing pages is only an error if the snapshot needs them
    for size in range(len(data) - 4096, len(data) // 2, -4096):
        path = tmp_path / f"t{size}.mdb"
        path.write_bytes(data[:size])
        try:
            snap = LmdbJsSnapshot.read(path)
        except ForeignFormatError as error:
            assert "outside the snapshot" in str(error)
        else:
            compare_with_expected(snap, EXPECTED["fixtures"]["flat.mdb"], f"truncated to {size}")


def test_random_bytes(tmp_path):
    path = tmp_path / "random.mdb"
    path.write_bytes(random.Random(1).randbytes(64 * 1024))
    assert not is_lmdbjs_file(path)
    with pytest.raises(ForeignFormatError, match="not an LMDB database"):
        LmdbJsSnapshot.read(path)


def test_directory_and_missing_file(tmp_path):
    assert not is_lmdbjs_file(tmp_path)
    assert not is_lmdbjs_file(tmp_path / "missing.mdb")
    with pytest.raises(OSError):
        LmdbJsSnapshot.read(tmp_path / "missing.mdb")


def test_py_lmdb_file_is_foreign(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    path = tmp_path / "plain.mdb"
    env = lmdb.open(str(path), subdir=False, max_dbs=2)
    with env.begin(write=True) as txn:
        txn.put(b"agent:1", b"\x81\xa1a\x01")
    env.close()
    assert not is_lmdbjs_file(path)
    with pytest.raises(ForeignFormatError, match="py-lmdb"):
        LmdbJsSnapshot.read(path)


def test_py_lmdb_refuses_lmdbjs_files():
    """Why this reader exists: the released LMDB cannot open these files."""
    lmdb = pytest.importorskip("lmdb")
    with pytest.raises(lmdb.Error):
        env = lmdb.open(str(FIXTURES / "flat.mdb"), subdir=False, readonly=True, lock=False)
        env.close()


def single_snapshot(data: bytes) -> bytearray:
    """Copy the newest meta over the other one, so the file has no older snapshot to fall back to."""
    out = bytearray(data)
    meta = pages.newest(pages.parse_metas(data))
    other = (1 - meta.page) * meta.page_size + pages.META_OFFSET
    out[other : other + pages.META_SIZE] = meta.raw
    return out


def _corrupt(data: bytearray, offset: int, new: bytes) -> bytes:
    data[offset : offset + len(new)] = new
    return bytes(data)


def test_page_cycle_is_detected(tmp_path):
    data = single_snapshot((FIXTURES / "flat.mdb").read_bytes())
    meta = pages.newest(pages.parse_metas(bytes(data)))
    root = meta.main_db.root
    assert meta.main_db.depth >= 2
    # make the root's first child pointer point back at the root itself
    base = root * meta.page_size
    node = base + 24 + struct.unpack_from("<H", data, base + 24)[0]
    struct.pack_into("<HH", data, node, root & 0xFFFF, root >> 16)
    path = tmp_path / "cycle.mdb"
    path.write_bytes(bytes(data))
    with pytest.raises(ForeignFormatError, match="cycle|depth|leaf|branch"):
        LmdbJsSnapshot.read(path)


def test_garbage_page_numbers_are_detected(tmp_path):
    data = single_snapshot((FIXTURES / "flat.mdb").read_bytes())
    meta = pages.newest(pages.parse_metas(bytes(data)))
    root_fields = [page * meta.page_size + 24 + 72 + 40 for page in (0, 1)]  # main db md_root
    path = tmp_path / "garbage.mdb"
    for bogus in (0, 1, 2**40, meta.last_pgno + 1, 0xFFFFFFFFFFFFFFFE):
        corrupted = bytearray(data)
        for field in root_fields:
            _corrupt(corrupted, field, struct.pack("<Q", bogus))
        path.write_bytes(bytes(corrupted))
        with pytest.raises(ForeignFormatError):
            LmdbJsSnapshot.read(path)


def test_random_corruption_never_crashes_or_hangs(tmp_path):
    """Flip bytes all over real files: either a clean read, or an LmdbJsError - nothing else."""
    rng = random.Random(20240501)
    outcomes = {"ok": 0, "error": 0}
    for name in ("flat.mdb", "subdbs.mdb", "misc.mdb"):
        original = (FIXTURES / name).read_bytes()
        for _ in range(60):
            data = bytearray(original)
            for _ in range(rng.choice((1, 4, 32))):
                position = rng.randrange(len(data))
                data[position] = rng.randrange(256)
            path = tmp_path / "fuzz.mdb"
            path.write_bytes(bytes(data))
            started = time.monotonic()
            try:
                snap = LmdbJsSnapshot.read(path, attempts=1)
                for entries in snap.databases.values():
                    for e in entries:
                        assert (e.error is None) or (e.value is None)
                outcomes["ok"] += 1
            except LmdbJsError:
                outcomes["error"] += 1
            assert time.monotonic() - started < 10
    assert outcomes["error"] > 0 and outcomes["ok"] > 0


def test_damaged_newest_snapshot_falls_back_to_previous(tmp_path):
    data = bytearray((FIXTURES / "flat.mdb").read_bytes())
    metas = pages.parse_metas(bytes(data))
    meta = pages.newest(metas)
    older = metas[1 - meta.page]
    assert older.main_db.root != meta.main_db.root
    # wreck the newest root page's header, as an interrupted (overlapping-sync) flush could
    base = meta.main_db.root * meta.page_size
    data[base : base + 8] = struct.pack("<Q", 999999)
    path = tmp_path / "crashed.mdb"
    path.write_bytes(bytes(data))
    snap = LmdbJsSnapshot.read(path)
    assert snap.txnid == older.txnid < meta.txnid
    assert any("damaged" in e and str(meta.txnid) in e for e in snap.errors)
    assert all(e.error is None for e in snap.databases[None])
    # with no older snapshot to fall back to, the damage is an error
    lone = single_snapshot(bytes(data))
    path.write_bytes(bytes(lone))
    with pytest.raises(ForeignFormatError, match="999999"):
        LmdbJsSnapshot.read(path)


# ---------------------------------------------------------------- msgpackr decoding details


def dec(data: bytes, shared=None) -> Any:
    return Decoder(shared).decode(data)


def test_timestamps_of_every_width():
    assert dec(bytes.fromhex("d6ff00000000")) == EPOCH
    # 64-bit: 123 ms in the upper 30 bits (nanoseconds), seconds below
    ns = 123_000_000
    raw = struct.pack(">II", ns << 2, 1_700_000_000)
    assert dec(b"\xd7\xff" + raw) == EPOCH + timedelta(seconds=1_700_000_000, milliseconds=123)
    raw96 = struct.pack(">Iq", 999_000_000, -1)
    assert dec(b"\xc7\x0c\xff" + raw96) == EPOCH - timedelta(milliseconds=1)
    raw96 = struct.pack(">Iq", 0, 7_258_118_400)  # 2200-01-01
    assert dec(b"\xc7\x0c\xff" + raw96) == datetime(2200, 1, 1, tzinfo=timezone.utc)
    assert dec(bytes.fromhex("d4ffff")) is InvalidDate
    with pytest.raises(DecodeError, match="outside"):
        dec(b"\xc7\x0c\xff" + struct.pack(">Iq", 0, 8_640_000_000_000))


def test_float32_is_decoded_exactly_as_stored():
    value = dec(b"\xca" + struct.pack(">f", 23.7))
    assert value == struct.unpack(">f", struct.pack(">f", 23.7))[0]
    assert value != 23.7
    assert dec(b"\xcb" + struct.pack(">d", 0.1 + 0.2)) == 0.30000000000000004


def test_records_inline_shared_and_two_byte():
    # inline definition d4 72 40 ["a","b"] then values; then a reference 0x40
    value = dec(bytes.fromhex("92") + bytes.fromhex("d47240") + b"\x92\xa1a\xa1b" + b"\x01\x02" + b"\x40\x03\x04")
    assert value == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    # shared structures: index 0 -> 0x40; index 33 -> 0x61 + high byte 0 ... two-byte ids
    structures = [["x"]] + [[f"k{i}"] for i in range(1, 70)]
    shared = __import__("bridge.lmdbjs.msgpackr", fromlist=["x"]).shared_structures_from(structures)
    assert dec(b"\x40\x05", shared) == {"x": 5}
    assert dec(b"\x61\x00\x07", shared) == {"k33": 7}  # index 33: 0x60 + 1, high byte 0
    assert dec(b"\x60\x01\x08", shared) == {"k64": 8}  # index 64: 0x60 + 0, high byte 1
    # an unknown record id is an integer, like msgpackr
    decoder = Decoder()
    assert decoder.decode(b"\x45") == 0x45 and decoder.unknown_record_ids == 1
    # inline definitions are per value
    with pytest.raises(DecodeError):
        Decoder().decode(b"\x92" + bytes.fromhex("d47240") + b"\x91\xa1a\x01" + b"\x40")


def test_cyclic_structured_clone_reference():
    # {self: <itself>}: d6 69 <id 1> then a map whose value is d6 70 <id 1>
    data = b"\xd6\x69\x00\x00\x00\x01" + b"\x81\xa4self" + b"\xd6\x70\x00\x00\x00\x01"
    value = dec(data)
    assert value["self"] is value


def test_bad_values_raise_decode_error():
    for data, message in (
        (b"", "end"),
        (b"\x92\x01", "end"),
        (b"\x01\x02", "trailing"),
        (b"\xc1", "0xc1"),
        (b"\xd4\x33\x00", "extension"),
        (b"\xd9\x05ab", "end"),
        (b"\xd6\x70\x00\x00\x00\x09", "reference"),
    ):
        with pytest.raises(DecodeError, match=message):
            dec(data)
    with pytest.raises(DecodeError, match="empty"):
        snapshot.decode_value(b"", Decoder())
    with pytest.raises(DecodeError):
        snapshot.decode_value(b"\xfe\x00\x00\x10garbage", Decoder())


def test_compression_headers():
    import lz4.block

    payload = b"\xa5hello" * 300
    block = lz4.block.compress(payload, store_size=False, dict=compression.default_dictionary())
    short = b"\xfe" + len(payload).to_bytes(3, "big") + block
    assert compression.decompress(short) == payload
    long = b"\xff\x99" + len(payload).to_bytes(6, "big") + block
    assert compression.decompress(long) == payload
    assert compression.is_compressed(short) and not compression.is_compressed(b"\xff")
    assert compression.default_dictionary()[:9] == b'{"text":"'
    assert len(compression.default_dictionary()) % 8 == 0
    with pytest.raises(DecodeError, match="header"):
        compression.decompress(b"\xfe\x00\x10" + block[:0])
    with pytest.raises(DecodeError):
        compression.decompress(b"\xfe" + (len(payload) + 5).to_bytes(3, "big") + block)


# ---------------------------------------------------------------- ordered-binary keys


def test_key_decoding():
    assert keys.decode_key(b"agent:1") == "agent:1"
    assert keys.decode_key(b"\x02structures:agents") == Symbol("structures:agents")
    assert keys.decode_key(b"\x1b") == ""
    assert keys.decode_key(b"\x1b\x04\x01x") == "\x01x"
    assert keys.decode_key(b"\x00") is None
    assert keys.decode_key(b"\x06") is False and keys.decode_key(b"\x07") is True
    assert keys.decode_key(b"a\x00b") == ["a", "b"]
    assert keys.decode_key(b"\x01\x02") == b"\x01\x02"
    assert keys.decode_uint32_key(b"\x05\x00\x00\x00") == 5


def test_number_keys_from_fixture_round_trip():
    fixture = EXPECTED["fixtures"]["misc.mdb"]
    db = next(d for d in fixture["databases"] if d["name"] == "keys")
    for exp in db["entries"]:
        same(keys.decode_key(bytes.fromhex(exp["raw_key"])), from_expected(exp["key"]), exp["raw_key"])


def test_package_data_is_shipped():
    import hashlib
    import importlib.resources as resources

    data = resources.files("bridge").joinpath("data")
    dictionary = data.joinpath("lmdbjs-dict.txt").read_bytes()
    # dict/dict.txt of npm lmdb 3.5.6 (and 2.9.4), byte for byte
    assert hashlib.sha256(dictionary).hexdigest() == (
        "7ce5943f129acb0603ee487a1f45b358b8ddf829a6814be32e42286d31928104"
    )
    assert "MIT License" in data.joinpath("LICENSE-lmdb-js.txt").read_text(encoding="utf-8")
