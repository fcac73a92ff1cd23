"""Fuzzing the wire with hypothesis: one bridge process serves thousands of generated cases.

Each case is a sequence of frames, valid or mutated (bad or odd headers, wrong lengths, truncated
bodies, garbage, invalid UTF-8, deep nesting, JSON-RPC messages with wrong or odd members and
params with wrong types in any field), followed by a *sentinel*: an ``agent.status`` request with
a unique id that must be answered. The oracles, all from the contract (protocol/README.md and
protocol/schema.json), never from the bridge's code:

* framing (``Framing``, an independent model of LSP framing: ``Content-Length: N`` + blank line +
  N bytes; a header over 8 MiB ends the stream) tells which bodies the bridge parses, and which
  bytes re-synchronise the stream before the sentinel (padding a body that claimed more bytes,
  ending a garbage line); a case may not desynchronise the stream for later cases;
* every parsed body gets exactly the answer the contract names, in order: -32700 (not JSON / not
  UTF-8 / too deep, id null), -32600 (not an object, no method, jsonrpc != "2.0", bad id), -32601
  (unknown method), -32602 (params not valid per schema.json), a result or a JSON-RPC error for
  valid params; never -32603 (internal error), never an "Internal error" log, and nothing at all
  for notifications and responses;
* state changes only through valid events: every line the bridge appended to its crash journal
  (the record of accepted events) is an event whose params are valid per schema.json;
* the process never exits, and the sentinel is always answered (no hang).

Cases that end the stream on purpose (a header over 8 MiB, end of input mid-frame) are tested
separately, each with a clean exit (code 1 resp. 0), a flush and a restart.

Inputs that once broke the bridge (ids and numbers outside 64 bits, lone surrogates, nesting
deeper than 254 inside params, nested objects that look like JSON-RPC messages, ``report`` with an
invalid ``since``, odd-case or LF-only headers) each have their own regression test below.

CI: FUZZ_CASES = 3,000 generated frame cases (+ 400 unicode cases and the full field matrix);
soak: 100,000 (+ 5,000).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bridge.protocol.methods import EVENT_METHODS, METHODS
from reliability import ROOT, SOAK, Timer, bridge_env, bump, read_db, record, scaled

pytestmark = pytest.mark.reliability

FUZZ_CASES = scaled(3_000, 100_000)
UNICODE_CASES = scaled(400, 5_000)
MAX_FRAME = 8 * 1024 * 1024
SENTINEL_AGENT = "fuzz-sentinel"
SCHEMA = json.loads((ROOT / "protocol" / "schema.json").read_text(encoding="utf-8"))
WAIT = 60.0  # seconds a sentinel may take on a noisy machine before the bridge counts as hung


# Shrinking a case against a live bridge can take many minutes; AGENT_TRACKER_FUZZ_NO_SHRINK=1
# reports the first failing case as found (useful when a CI run must stay bounded).
SHRINK_PHASES = ([Phase.explicit, Phase.reuse, Phase.generate] if os.environ.get("AGENT_TRACKER_FUZZ_NO_SHRINK")
                 else list(Phase))


def hypothesis_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, derandomize=not SOAK,
                    phases=SHRINK_PHASES,
                    suppress_health_check=list(HealthCheck), print_blob=True)


# -- a synchronous client that keeps every byte the bridge writes ----------------------------------------


class SyncBridge:
    """The real bridge over pipes; a thread parses its output strictly (the bridge must frame well)."""

    def __init__(self, home: Path, db: Path, stderr: Path, directory: Path):
        self.home, self.db, self.directory = home, db, directory
        self._stderr = open(stderr, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "bridge", "serve"], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                        env=bridge_env(home))
        self.messages: list[dict[str, Any]] = []  # everything, in order
        self.responses: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.output_errors: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.sentinels = 0
        init = self.request({"jsonrpc": "2.0", "id": "init", "method": "initialize",
                             "params": {"clientInfo": {"name": "fuzz", "version": "0"},
                                        "config": {"databasePath": str(db)},
                                        "project": {"directory": str(directory)}}})
        assert init is not None and "result" in init, init
        self.journal = Path(init["result"]["journal"]["path"])
        self.journal_offset = 0
        self.journal_seq = 0

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while True:
                header = stdout.readline()
                if not header:
                    return
                match = re.fullmatch(rb"Content-Length: (\d+)\r\n", header)
                if not match or stdout.readline() != b"\r\n":
                    self.output_errors.append(f"bad frame header from the bridge: {header!r}")
                    return
                message = json.loads(stdout.read(int(match.group(1))))
                with self._changed:
                    self.messages.append(message)
                    (self.notifications if "method" in message else self.responses).append(message)
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._changed.notify_all()

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def send(self, message: Any) -> None:
        body = json.dumps(message).encode()
        self.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def wait_for(self, predicate, timeout: float = WAIT) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self._thread.is_alive()):
                    return predicate()
                self._changed.wait(min(remaining, 0.5))
        return True

    def request(self, message: dict[str, Any], timeout: float = WAIT) -> dict[str, Any] | None:
        start = len(self.responses)
        self.send(message)
        found: list[dict[str, Any]] = []

        def done() -> bool:
            found[:] = [r for r in self.responses[start:] if r.get("id") == message["id"]]
            return bool(found)

        return found[0] if self.wait_for(done, timeout) else None

    def sentinel_frame(self) -> tuple[bytes, str]:
        self.sentinels += 1
        msg_id = f"sentinel-{self.sentinels}"
        body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "agent.status",
                           "params": {"agentId": SENTINEL_AGENT}}).encode()
        return b"Content-Length: %d\r\n\r\n" % len(body) + body, msg_id

    def new_journal_entries(self) -> list[dict[str, Any]]:
        """Entries journaled since the last call (flushes truncate the file; sequence numbers go on)."""
        def read(offset: int) -> tuple[list[dict[str, Any]], int]:
            with open(self.journal, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
            complete = data[:data.rfind(b"\n") + 1]
            entries = []
            for line in complete.splitlines():
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    return [], -1
            return entries, offset + len(complete)

        entries, offset = read(self.journal_offset)
        if offset < 0 or (entries and entries[0]["s"] != self.journal_seq + 1):
            entries, offset = read(0)  # truncated by a flush meanwhile: what is left is newer
        entries = [e for e in entries if e["s"] > self.journal_seq]
        if entries:
            assert [e["s"] for e in entries] == list(range(entries[0]["s"], entries[-1]["s"] + 1))
            self.journal_seq = entries[-1]["s"]
        self.journal_offset = offset
        return entries

    def close(self) -> int:
        try:
            if self.process.poll() is None:
                self.request({"jsonrpc": "2.0", "id": "bye", "method": "shutdown"})
                self.send({"jsonrpc": "2.0", "method": "exit"})
            return self.process.wait(60)
        finally:
            self.process.kill()
            self._thread.join(10)
            self._stderr.close()


# -- an independent model of the framing ------------------------------------------------------------------


class Framing:
    """LSP framing as the contract states it, byte by byte: which bodies are read, what state is left."""

    # protocol/README.md: "Content-Length" in any case, spaces around the value, \r\n or a bare \n.
    HEADER = re.compile(rb"content-length[ \t]*:[ \t]*(\d+)[ \t]*\r?\n", re.IGNORECASE)

    def __init__(self) -> None:
        self.line = b""
        self.length = 0
        self.remaining: int | None = None
        self.body = bytearray()
        self.killed = False
        self.bodies: list[bytes] = []

    def feed(self, data: bytes) -> None:
        i = 0
        while i < len(data) and not self.killed:
            if self.remaining is not None:
                take = data[i:i + self.remaining]
                self.body += take
                self.remaining -= len(take)
                i += len(take)
                if self.remaining == 0:
                    self.bodies.append(bytes(self.body))
                    self.body.clear()
                    self.remaining, self.length = None, 0
                continue
            j = data.find(b"\n", i)
            if j < 0:
                self.line += data[i:]
                return
            line, self.line, i = self.line + data[i:j + 1], b"", j + 1
            self._header_line(line)

    def _header_line(self, line: bytes) -> None:
        match = self.HEADER.fullmatch(line)
        if match and int(match.group(1)) > MAX_FRAME:
            self.killed = True  # "frame header claiming more than 8 MiB": the stream ends
            return
        if not self.length and match:
            self.length = int(match.group(1))
        if self.length and not line.strip():
            self.remaining = self.length

    @property
    def clean(self) -> bool:
        return self.remaining is None and not self.line and not self.length

    def resync(self) -> bytes:
        """Bytes that bring the stream back to a frame boundary: pad a body, end a line, give a blank line."""
        out = b""
        while not self.clean and not self.killed:
            if self.remaining is not None:
                piece = b" " * self.remaining
            elif self.line:
                piece = b"\r\n"
            else:  # a length was announced; a blank line starts its body, padded next round
                piece = b"\r\n"
            self.feed(piece)
            out += piece
        return out


# -- the oracle: what the contract says each body gets -------------------------------------------------------

_validators: dict[str, jsonschema.protocols.Validator] = {}


def schema_valid(method: str, params: Any) -> bool:
    validator = _validators.get(method)
    if validator is None:
        schema = {"$defs": SCHEMA["$defs"], **(SCHEMA["methods"][method].get("params") or {"type": "object"})}
        validator = _validators[method] = jsonschema.Draft202012Validator(schema)
    if params is None:
        params = {}
    if isinstance(params, dict):
        # The bridge treats an explicit null like an absent optional member (JSON from JS keeps nulls).
        required = set((SCHEMA["methods"][method].get("params") or {}).get("required", []))
        params = {k: v for k, v in params.items() if v is not None or k in required}
        for nested in ("agent", "project", "clientInfo"):
            if isinstance(params.get(nested), dict):
                params[nested] = {k: v for k, v in params[nested].items() if v is not None or k in ("id", "directory")}
    return validator.is_valid(params)


def valid_id(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def expectation(body: bytes) -> tuple | None:
    """The answer the contract promises for one parsed body (None: no answer)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return ("error", None, -32700)
    if not isinstance(value, dict):
        return ("error", None, -32600)
    if "jsonrpc" in value and isinstance(value.get("method"), str):
        method = value["method"]
        if "id" not in value:
            return None  # a notification: no answer, whatever it holds
        msg_id = value["id"]
        if isinstance(msg_id, float):
            return ("float-id", msg_id)  # see test_a_fractional_id_is_answered_with_that_id
        if not valid_id(msg_id):  # null, bool, array, object: "id not string/number"
            return ("error", None, -32600)
        if value["jsonrpc"] != "2.0":
            return ("error", msg_id, -32600)
        if method not in METHODS:
            return ("error", msg_id, -32601)
        params = value.get("params")
        if not schema_valid(method, params):
            return ("invalid-params", msg_id, method)
        return ("answer", msg_id, method)
    if "result" in value or "error" in value:
        return None  # a response: ignored
    msg_id = value.get("id")
    if isinstance(msg_id, float):
        return ("float-id-error", msg_id)  # echoed (protocol/README.md) or null: either is acceptable
    return ("error", msg_id if valid_id(msg_id) else None, -32600)


FLUSHING = {"flush", "shutdown", "report", "recommend"}


def in_expected_order(got: list[dict[str, Any]], expected: list[tuple]) -> list[dict[str, Any]]:
    """The answers in the order of the requests: a flushing request's answer may come after later ones."""
    late_ids = [want[1] for want in expected if want[0] == "answer" and want[2] in FLUSHING]
    if not late_ids:
        return got
    rest = list(got)
    late = []
    for msg_id in late_ids:
        # the last answer (a result, not an error) with that id: hypothesis reuses ids, a late answer
        # usually comes after the others, and an error with the same id is another request's
        found = next((r for r in reversed(rest) if r.get("id") == msg_id and "result" in r), None) or \
            next((r for r in reversed(rest) if r.get("id") == msg_id), None)
        if found is not None:
            rest.remove(found)
        late.append(found)
    ordered = []
    for want in expected:
        if want[0] == "answer" and want[2] in FLUSHING:
            answer = late.pop(0)
            if answer is not None:
                ordered.append(answer)
        elif rest:
            ordered.append(rest.pop(0))
    return ordered + rest


def expected_drop(body: bytes) -> str | None:
    """The log warning the contract promises for a notification that is dropped (None: not dropped)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or "id" in value or "jsonrpc" not in value or not isinstance(value.get("method"), str):
        return None
    if value["jsonrpc"] != "2.0":
        return "Dropped a notification whose jsonrpc"
    if value["method"] == "initialize":
        return None  # already initialized: ignored either way
    if value["method"] in METHODS and not schema_valid(value["method"], value.get("params")):
        return f"Dropped {value['method']} notification"
    return None


def is_valid_event(body: bytes) -> bool:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return (isinstance(value, dict) and value.get("jsonrpc") == "2.0" and value.get("method") in EVENT_METHODS
            and (valid_id(value.get("id")) or "id" not in value) and schema_valid(value["method"], value.get("params")))


def check_response(expected: tuple, response: dict[str, Any]) -> str | None:
    kind = expected[0]
    error = response.get("error")
    if error is not None and error.get("code") == -32603:
        return f"internal error {error.get('message')!r}"
    if kind == "error":
        _, msg_id, code = expected
        if response.get("id") != msg_id or not error or error.get("code") != code:
            return f"expected error {code} with id {msg_id!r}"
    elif kind == "float-id-error":
        if not error or error.get("code") != -32600 or response.get("id") not in (expected[1], None):
            return "expected -32600 with the fractional id or null"
    elif kind == "float-id":
        if not (response.get("id") == expected[1] or (response.get("id") is None and error and error["code"] == -32600)):
            return "a fractional id got neither its answer nor -32600"
    elif kind == "invalid-params":
        allowed = (-32602, -32600) if expected[2] == "initialize" else (-32602,)
        if response.get("id") != expected[1] or not error or error.get("code") not in allowed:
            return f"params invalid per schema.json must get -32602 ({expected[2]})"
    elif kind == "answer":
        if response.get("id") != expected[1] or ("result" in response) == ("error" in response):
            return "expected one result or error with the request's id"
    return None


# -- generators -----------------------------------------------------------------------------------------------

CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
IDS = st.one_of(st.text(CHARS, min_size=1, max_size=24), st.sampled_from(["build", "s1", "/tmp/p", "../../etc"]))
TEXTS = st.text(CHARS, max_size=40)
SAFE_INTS = st.integers(-(2 ** 53), 2 ** 53)
SAFE_KEYS = st.text(CHARS, max_size=8).filter(lambda k: k not in ("jsonrpc", "method"))
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), SAFE_INTS, st.floats(allow_nan=False, allow_infinity=False), TEXTS),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(SAFE_KEYS, children, max_size=3)),
    max_leaves=12)
OBJECTS = st.dictionaries(SAFE_KEYS, JSON, max_size=4)
WRONG = st.one_of(st.none(), st.booleans(), SAFE_INTS, st.floats(allow_nan=True, allow_infinity=True),
                  st.sampled_from(["", "\x00", "a\x00b", "x" * 4097, "2", "true", [], {}, [1], {"id": 1},
                                   ["a", 1], "bad grade", 3, 2.5]),
                  TEXTS, st.lists(SAFE_INTS, max_size=2))
AGENT_REF = st.fixed_dictionaries({"id": IDS}, optional={"model": TEXTS, "provider": TEXTS})
STRING_LISTS = st.lists(TEXTS, max_size=3)
# Hashes shorter than 4 characters break the commit counters: test_a_short_hash_reported_twice_counts_once.
HASHES = st.one_of(st.text("0123456789abcdef", min_size=4, max_size=40), IDS.filter(lambda h: len(h) >= 4))
GRADES = st.sampled_from([-1, 1, 2, 5, 2.0, "bad", "neutral", "good", "excellence"])

# (required, optional) wire members of every method's params, with generators of valid values.
FIELDS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "initialize": ({}, {"clientInfo": st.fixed_dictionaries({}, optional={"name": TEXTS, "version": TEXTS}),
                        "config": st.just({}), "project": st.fixed_dictionaries({"directory": IDS})}),
    "shutdown": ({}, {}),
    "flush": ({}, {}),
    "agent.status": ({}, {"agentId": IDS, "sessionID": IDS}),
    "report": ({}, {"projectPath": IDS, "stack": TEXTS, "since": st.sampled_from(["2026-01-31", "30d"]),
                    "minSessions": st.integers(1, 50)}),
    "session.created": ({"sessionID": IDS}, {"directory": IDS, "agent": AGENT_REF, "title": TEXTS, "parentID": TEXTS}),
    "session.updated": ({"sessionID": IDS}, {"agent": AGENT_REF, "title": TEXTS}),
    "session.idle": ({"sessionID": IDS}, {}),
    "session.deleted": ({"sessionID": IDS}, {}),
    "tool.executed": ({"sessionID": IDS, "callID": IDS, "tool": IDS, "success": st.booleans()},
                      {"agentId": IDS, "args": OBJECTS, "output": TEXTS, "title": TEXTS}),
    "command.executed": ({"sessionID": IDS, "command": IDS},
                         {"success": st.booleans(), "agentId": IDS, "arguments": TEXTS}),
    "commit.completed": ({"commitHash": HASHES}, {"projectPath": IDS, "agentId": IDS, "sessionID": IDS,
                                                  "taskDescription": TEXTS}),
    "commit.pushed": ({}, {"projectPath": IDS, "agentId": IDS, "sessionID": IDS, "head": IDS}),
    "grade": ({"grade": GRADES, "grader": st.sampled_from(["agent", "user"])},
              {"sessionID": IDS, "agentId": IDS, "commitHash": HASHES, "projectPath": IDS, "reason": TEXTS}),
    "bug.reported": ({}, {"sessionID": IDS, "agentId": IDS, "description": TEXTS, "commitHash": IDS,
                          "projectPath": IDS}),
    "retrospective.recorded": ({}, {"sessionID": IDS, "agentId": IDS, "summary": TEXTS, "wentWell": STRING_LISTS,
                                    "toImprove": STRING_LISTS, "lessons": STRING_LISTS}),
    "activity.logged": ({"kind": IDS}, {"sessionID": IDS, "agentId": IDS, "description": TEXTS, "data": OBJECTS}),
    "agent.reinstate": ({"agentId": IDS}, {"reason": TEXTS}),
}
FUZZ_METHODS = [m for m in METHODS if m != "exit"]  # `exit` ends the process: tested on its own


@st.composite
def params_for(draw, method: str) -> Any:
    required, optional = FIELDS[method]
    params = {name: draw(strategy) for name, strategy in required.items()}
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)) if optional else []:
        params[name] = draw(optional[name])
    mutation = draw(st.sampled_from(["none"] * 5 + ["wrong", "wrong", "drop", "extra", "nested", "whole"]))
    fields = sorted({*required, *optional})
    if mutation == "wrong" and fields:
        params[draw(st.sampled_from(fields))] = draw(WRONG)
    elif mutation == "drop" and required:
        params.pop(draw(st.sampled_from(sorted(required))))
    elif mutation == "extra":
        params[draw(SAFE_KEYS)] = draw(JSON)
    elif mutation == "nested" and isinstance(params.get("agent"), dict):
        params["agent"][draw(st.sampled_from(["id", "model", "provider"]))] = draw(WRONG)
    elif mutation == "whole":
        return draw(st.one_of(WRONG, st.lists(JSON, max_size=3), OBJECTS))
    return params


@st.composite
def messages(draw) -> dict[str, Any]:
    method = draw(st.one_of(st.sampled_from(sorted(EVENT_METHODS)), st.sampled_from(sorted(EVENT_METHODS)),
                            st.sampled_from(FUZZ_METHODS),
                            TEXTS.filter(lambda m: m != "exit"), st.sampled_from(["$/cancelRequest", "initialized",
                                                                                 "textDocument/didOpen", "status"]),
                            SAFE_INTS, st.none()))
    message: dict[str, Any] = {}
    jsonrpc = draw(st.sampled_from(["2.0"] * 10 + ["1.0", "2", 2.0, None, "missing"]))
    if jsonrpc != "missing":
        message["jsonrpc"] = jsonrpc
    if draw(st.integers(0, 9)) < 9:
        message["method"] = method
    kind = draw(st.sampled_from(["notification", "request", "notification", "request", "odd-id", "response"]))
    if kind == "request":
        message["id"] = draw(st.one_of(st.integers(0, 2 ** 31), TEXTS))
    elif kind == "odd-id":
        message["id"] = draw(st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
                                       SAFE_INTS, st.lists(SAFE_INTS, max_size=2), st.just({"a": 1}), st.just("")))
    elif kind == "response":
        message["id"] = draw(SAFE_INTS)
        message[draw(st.sampled_from(["result", "error"]))] = draw(JSON)
    if isinstance(method, str) and method in FIELDS:
        if draw(st.integers(0, 7)):
            message["params"] = draw(params_for(method))
    elif draw(st.booleans()):
        message["params"] = draw(JSON)
    return message


@st.composite
def bodies(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["message"] * 8 + ["garbage", "json", "invalid-utf8", "deep", "deep-params", "bom"]))
    if kind == "message":
        return kind, json.dumps(draw(messages()), ensure_ascii=draw(st.booleans())).encode()
    if kind == "garbage":
        return kind, draw(st.binary(max_size=200))
    if kind == "json":
        return kind, json.dumps(draw(JSON)).encode()
    if kind == "invalid-utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xe2\x82", b"\x80abc", b"\xf8\x88\x80\x80\x80"]))
        return kind, (b'{"jsonrpc":"2.0","id":%d,"method":"agent.status","params":{"agentId":"a%sb"}}'
                      % (draw(st.integers(0, 999)), bad))
    if kind == "deep":
        # Nesting the bridge parses (<= 600) or must refuse as a parse error (>= 2,000); never in
        # between, where the exact limit depends on the interpreter's stack.
        depth = draw(st.one_of(st.integers(1, 600), st.integers(2_000, 100_000)))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return kind, opener * depth + (b"1" if opener != b"[" else b"") + closer * depth
    if kind == "deep-params":
        depth = draw(st.integers(1, 200))
        nested = b'{"a":' * depth + b"1" + b"}" * depth
        return kind, (b'{"jsonrpc":"2.0","id":%d,"method":"%s","params":{"sessionID":"s","kind":"k","agentId":%s}}'
                      % (draw(st.integers(0, 999)), draw(st.sampled_from([b"activity.logged", b"agent.status"])), nested))
    return kind, b"\xef\xbb\xbf" + json.dumps(draw(messages())).encode()


HEADERS = {
    "ok": b"Content-Length: %d\r\n\r\n",
    "with-type": b"Content-Length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n",
    "type-first": b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
    "leading-zeros": b"Content-Length: 0000%d\r\n\r\n",
    "junk-line-first": b"X-Junk: \xff\xfe\x00\r\nContent-Length: %d\r\n\r\n",
    "lowercase": b"content-length: %d\r\n\r\n",
    "no-space": b"Content-Length:%d\r\n\r\n",
    "two-spaces": b"Content-Length:  %d\r\n\r\n",
    "trailing-space": b"Content-Length: %d \r\n\r\n",
    "lf-only": b"Content-Length: %d\n\n",
    "cr-only": b"Content-Length: %d\r\r",
    "no-header": b"\r\n",
    "no-blank-line": b"Content-Length: %d\r\n",
    "duplicate": b"Content-Length: %d\r\nContent-Length: 7\r\n\r\n",
    "negative": b"Content-Length: -%d\r\n\r\n",
    "not-a-number": b"Content-Length: twelve\r\n\r\n",
    "hex": b"Content-Length: 0x%x\r\n\r\n",
    "zero": b"Content-Length: 0\r\n\r\n",
    "unicode-digits": "Content-Length: ١٢\r\n\r\n".encode(),
}
RESYNCING_HEADERS = {"ok", "with-type", "type-first", "leading-zeros", "junk-line-first"}


@st.composite
def frames(draw) -> tuple[bytes, list[str]]:
    out, labels = b"", []
    for _ in range(draw(st.integers(1, 3))):
        kind, body = draw(bodies())
        header = draw(st.sampled_from(["ok"] * 16 + sorted(HEADERS)))
        length_mode = draw(st.sampled_from(["exact"] * 8 + ["shorter", "longer", "truncated"]))
        declared, sent = len(body), body
        if length_mode == "shorter" and body:
            declared = draw(st.integers(0, len(body) - 1))
        elif length_mode == "longer":
            declared = len(body) + draw(st.integers(1, 2_000))
        elif length_mode == "truncated" and body:
            sent = body[:draw(st.integers(0, len(body) - 1))]
        template = HEADERS[header]
        head = template % declared if b"%" in template else template
        if header not in RESYNCING_HEADERS or length_mode != "exact":
            sent = sent[:16_384]  # garbage read as header lines stays far below the 64 KiB line limit
        out += head + sent
        labels.append(f"{kind}/{header}/{length_mode}")
    return out, labels


# -- the harness ------------------------------------------------------------------------------------------------


class FuzzHarness:
    def __init__(self, home: Path, tmp: Path):
        self.home, self.tmp = home, tmp
        self.db = tmp / "fuzz db" / "agent-tracker.lmdb"
        self.project = tmp / "fuzz project"
        self.project.mkdir(exist_ok=True)
        self.stats: Counter = Counter()
        self.bridge = self._start()

    def _start(self) -> SyncBridge:
        self.stats["bridge processes"] += 1
        return SyncBridge(self.home, self.db, self.tmp / "bridge.stderr", self.project)

    def run_case(self, data: bytes, labels: list[str]) -> None:
        bridge = self.bridge
        if bridge.process.poll() is not None:  # an earlier (failing) case killed it: hypothesis is shrinking
            self.bridge = bridge = self._start()
        framing = Framing()
        framing.feed(data)
        if framing.killed:
            self._ends_the_stream(bridge, data, labels)
            return
        resync = framing.resync()
        sentinel, sentinel_id = bridge.sentinel_frame()
        framing.feed(sentinel)
        assert framing.clean and framing.bodies, "the model lost the sentinel"
        expected = [e for e in map(expectation, framing.bodies) if e is not None]
        responses_before, notifications_before = len(bridge.responses), len(bridge.notifications)
        bridge.write(data + resync + sentinel)
        answered = bridge.wait_for(lambda: any(r.get("id") == sentinel_id for r in bridge.responses[responses_before:]))
        context = f"case {labels}: {data[:300]!r} + resync {resync[:40]!r}"
        assert bridge.process.poll() is None, f"{context}: the bridge exited with {bridge.process.returncode}"
        assert answered, f"{context}: the sentinel was not answered within {WAIT}s (hang or desync)"
        # A flush (shutdown, report, recommend) is answered when its write committed, in a worker thread: the
        # requests behind it, the sentinel included, may be answered first. Wait for it too.
        bridge.wait_for(lambda: len(bridge.responses) - responses_before >= len(expected))
        got = in_expected_order(bridge.responses[responses_before:], expected)
        assert len(got) == len(expected), f"{context}: {len(got)} answers for {len(expected)} expected: {got} vs {expected}"
        for want, response in zip(expected, got):
            problem = check_response(want, response)
            assert problem is None, f"{context}: {problem}; got {response}"
        assert got[-1].get("result", {}).get("agentId") == SENTINEL_AGENT, f"{context}: sentinel answer {got[-1]}"
        logs = [n["params"] for n in bridge.notifications[notifications_before:] if n["method"] == "log"]
        internal = [log for log in logs if "Internal error" in log.get("message", "")]
        assert not internal, f"{context}: {internal}"
        # Every notification the contract says is dropped was dropped, with a warning saying so.
        warnings = [log["message"] for log in logs if log["level"] == "warning"]
        for drop in filter(None, map(expected_drop, framing.bodies)):
            match = next((w for w in warnings if w.startswith(drop)), None)
            assert match is not None, f"{context}: no warning {drop!r}: {warnings}"
            warnings.remove(match)
            self.stats["drops checked"] += 1
        self.stats["valid events sent"] += sum(map(is_valid_event, framing.bodies))
        for entry in bridge.new_journal_entries():
            assert entry["m"] in EVENT_METHODS and schema_valid(entry["m"], entry["p"]), \
                f"{context}: the bridge accepted an invalid event: {entry}"
            self.stats["events accepted"] += 1
        assert not bridge.output_errors, bridge.output_errors
        self.stats["cases"] += 1
        self.stats["frames"] += len(labels)
        self.stats["answers checked"] += len(expected)
        for label in labels:
            kind, header, length = label.split("/")
            self.stats[f"body:{kind}"] += 1
            self.stats[f"header:{header}"] += 1
            self.stats[f"length:{length}"] += 1

    def _ends_the_stream(self, bridge: SyncBridge, data: bytes, labels: list[str]) -> None:
        """A header over 8 MiB: a log error, a flush, exit code 1; then a new bridge takes over."""
        bridge.write(data)
        try:
            code = bridge.process.wait(WAIT)
        finally:
            bridge.process.kill()
            bridge._thread.join(10)
            bridge._stderr.close()
        context = f"case {labels}: {data[:300]!r}"
        self.stats["frames"] += len(labels)
        assert code == 1, f"{context}: exit code {code} after an oversized header"
        assert any(n["method"] == "log" and n["params"]["level"] == "error" and "8388608" in n["params"]["message"]
                   for n in bridge.notifications), f"{context}: no log error about the frame limit"
        self.stats["stream endings (exit 1 + restart)"] += 1
        self.stats["cases"] += 1
        self.bridge = self._start()

    def close(self) -> None:
        code = self.bridge.close()
        assert code == 0, f"the fuzzed bridge did not shut down cleanly: {code}"


def test_fuzzed_frames_never_crash_hang_or_change_state_invalidly(isolated_home: Path, tmp_path: Path) -> None:
    timer = Timer()
    harness = FuzzHarness(isolated_home, tmp_path)

    @hypothesis_settings(FUZZ_CASES)
    @given(case=frames())
    def fuzz(case: tuple[bytes, list[str]]) -> None:
        harness.run_case(*case)
        if harness.stats["cases"] % 500 == 0:  # now and then, a case that ends the stream: exit 1, restart
            size = MAX_FRAME + 1 + harness.stats["cases"] * 7919
            harness.run_case(case[0] + b"\r\nContent-Length: %d\r\n\r\n{" % size, case[1] + ["oversized/ends/exact"])

    try:
        fuzz()
    finally:
        harness.bridge.process.poll() is None and harness.close()
    data = read_db(harness.db)
    # Whatever valid events the fuzzer produced, the stored counters are coherent.
    rows: Counter = Counter(r.get("agentId") for r in data["commits"].values())
    mismatched = {agent_id: (agent["totalCommits"], rows.get(agent_id, 0)) for agent_id, agent in data["agents"].items()
                  if agent["totalCommits"] != rows.get(agent_id, 0)}
    assert mismatched == {}, f"totalCommits != commit rows: {mismatched}; commits {data['commits']}"
    stats = harness.stats
    record("fuzz-frames", cases=stats["cases"], frames=stats["frames"], answers_checked=stats["answers checked"],
           stream_endings_with_restart=stats["stream endings (exit 1 + restart)"],
           dropped_notifications_checked=stats["drops checked"], valid_events_sent=stats["valid events sent"],
           journaled_events_seen_all_schema_valid=stats["events accepted"], bridge_processes=stats["bridge processes"],
           crashes=0, hangs=0, by_kind={k: v for k, v in sorted(stats.items()) if ":" in k}, seconds=timer.seconds)


# -- every params field of every method, with wrong types ---------------------------------------------------------

BASE_PARAMS: dict[str, dict[str, Any]] = {
    "initialize": {"clientInfo": {"name": "n", "version": "v"}, "config": {}, "project": {"directory": "/tmp/p"}},
    "shutdown": {}, "flush": {}, "exit": {},
    "agent.status": {"agentId": "matrix", "sessionID": "m1"},
    "report": {"projectPath": "/tmp/p", "stack": "python", "since": "30d", "minSessions": 3},
    "recommend": {"directory": "/tmp", "minSessions": 3},
    "session.created": {"sessionID": "m1", "directory": "/nonexistent/p", "agent": {"id": "matrix", "model": "m", "provider": "p"},
                        "title": "t", "parentID": "p0"},
    "session.updated": {"sessionID": "m1", "agent": {"id": "matrix", "model": "m", "provider": "p"}, "title": "t"},
    "session.idle": {"sessionID": "m1"},
    "session.deleted": {"sessionID": "m1"},
    "session.ended": {"sessionID": "m1", "reason": "r"},
    "tool.executed": {"sessionID": "m1", "callID": "c1", "tool": "read", "success": True, "agentId": "matrix",
                      "args": {"x": 1}, "output": "o", "title": "t"},
    "command.executed": {"sessionID": "m1", "command": "test", "success": True, "agentId": "matrix", "arguments": "a"},
    "commit.completed": {"commitHash": "abc1234", "projectPath": "/tmp/p", "agentId": "matrix", "sessionID": "m1",
                         "taskDescription": "t"},
    "commit.pushed": {"projectPath": "/tmp/p", "agentId": "matrix", "sessionID": "m1", "head": "abc1234"},
    "grade": {"grade": 2, "grader": "agent", "sessionID": "m1", "agentId": "matrix", "commitHash": "abc1234",
              "projectPath": "/tmp/p", "reason": "r"},
    "bug.reported": {"sessionID": "m1", "agentId": "matrix", "description": "d", "commitHash": "abc1234",
                     "projectPath": "/tmp/p"},
    "retrospective.recorded": {"sessionID": "m1", "agentId": "matrix", "summary": "s", "wentWell": ["a"],
                               "toImprove": ["b"], "lessons": ["c"], "author": "agent", "commitHash": "abc1234",
                               "projectPath": "/tmp/p"},
    "activity.logged": {"kind": "k", "sessionID": "m1", "agentId": "matrix", "description": "d", "data": {"x": 1}},
    "agent.reinstate": {"agentId": "matrix", "reason": "r"},
    "usage.recorded": {"sessionID": "m1", "messageID": "msg1", "cost": 0.5, "durationMs": 10,
                       "tokens": {"input": 1, "output": 2, "reasoning": 3, "cacheRead": 4, "cacheWrite": 5},
                       "agent": {"id": "matrix", "model": "m", "provider": "p"}},
    "agent.configured": {"sessionID": "m1", "agentId": "matrix",
                         "definition": {"name": "matrix", "mode": "primary", "prompt": "You build."}},
}
WRONG_BY_TYPE = {
    "string": [0, 1.5, True, [], {}, ["x"]],
    "id": [0, 1.5, True, [], {}, "", "a\x00b", "x" * 4097],
    "boolean": ["true", 1, 0, [], {}],
    "object": ["x", 1, [], True],
    "string-list": ["x", [1], [None], {}, [["a"]]],
    "grade": [3, "2", 2.5, None, True, "great", 0, float("nan")],
    "grader": ["admin", 1, None, "", "Agent", ["agent"]],
    "ref": ["build", 1, [], True],
    "integer": ["3", 1.5, True, [], {}, 0, -1],
    "number": ["0.5", True, [], {}, -0.5, -1],
    "event-time": [0, 1.5, True, [], {}, "", "yesterday", "2025-01-01", "2025-01-01T00:00:00", "x" * 4097],
}


def field_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return {"Grade": "grade", "AgentRef": "ref", "ProjectRef": "ref", "ClientInfo": "ref", "Config": "object",
                "UsageTokens": "ref", "EventTime": "event-time", "AgentDefinition": "object"}[name]
    if "enum" in schema:
        return "grader"
    if schema.get("type") == "string":
        return "id" if "pattern" in schema else "string"
    if schema.get("type") == "array":
        return "string-list"
    return {"boolean": "boolean", "object": "object", "integer": "integer", "number": "number"}[schema["type"]]


def wrong_values(schema: dict[str, Any]) -> list[Any]:
    """The wrong values of a field's kind that its schema refuses (0 is a fine token count)."""
    minimum = schema.get("minimum")
    return [value for value in WRONG_BY_TYPE[field_type(schema)]
            if not (minimum is not None and isinstance(value, (int, float)) and not isinstance(value, bool)
                    and value >= minimum and (schema.get("type") == "number" or float(value).is_integer()))]


def field_matrix() -> list[tuple[str, str, Any, bool]]:
    """(method, wire path, wrong value, required) for every field of every method's params."""
    cases = []
    for method in METHODS:
        params_schema = SCHEMA["methods"][method].get("params") or {}
        required = set(params_schema.get("required", []))
        for name, schema in (params_schema.get("properties") or {}).items():
            kind = field_type(schema)
            for wrong in wrong_values(schema):
                if wrong is None and name not in required:
                    continue  # null = absent for an optional member
                cases.append((method, name, wrong, name in required))
            if kind == "ref" and name in ("agent", "project", "tokens"):
                inner = SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]]
                for inner_name, inner_schema in inner["properties"].items():
                    for wrong in wrong_values(inner_schema):
                        cases.append((method, f"{name}.{inner_name}", wrong, True))
            if name in required:
                cases.append((method, name, "<missing>", True))
        cases.append((method, "", [1, 2], True))  # params that are not an object
    return cases


def test_wrong_types_in_every_params_field_of_every_method_change_nothing(isolated_home: Path, tmp_path: Path) -> None:
    timer = Timer()
    assert set(BASE_PARAMS) == set(METHODS), "a method without base params: extend BASE_PARAMS"
    harness = FuzzHarness(isolated_home, tmp_path)
    bridge = harness.bridge
    matrix = field_matrix()
    checked = Counter()
    try:
        before = bridge.request({"jsonrpc": "2.0", "id": "before", "method": "agent.status",
                                 "params": {"agentId": "matrix"}})
        for index, (method, path, wrong, _) in enumerate(matrix):
            params: Any = json.loads(json.dumps(BASE_PARAMS[method]))
            if path == "":
                params = wrong
            else:
                head, _, tail = path.partition(".")
                target = params[head] if tail else params
                leaf = tail or head
                if wrong == "<missing>":
                    target.pop(leaf, None)
                else:
                    target[leaf] = wrong
            wire_name = "params" if path == "" else f"params.{path}"
            assert not schema_valid(method, params), (method, path, wrong)
            if method != "exit":
                response = bridge.request({"jsonrpc": "2.0", "id": f"m{index}", "method": method, "params": params})
                # A second initialize may be refused as such (-32600) before its params are looked at.
                allowed = (-32602, -32600) if method == "initialize" else (-32602,)
                assert response is not None and response.get("error", {}).get("code") in allowed, \
                    f"{method} {path}={wrong!r}: {response}"
                if path and response["error"]["code"] == -32602:
                    # report's range checks are shared with the CLI and name the option its way (--min-sessions).
                    cli_name = "--" + re.sub(r"([A-Z])", lambda c: "-" + c.group(1).lower(), path)
                    assert wire_name in response["error"]["message"] or cli_name in response["error"]["message"], \
                        f"{method}: the error must name {wire_name}: {response}"
                checked["requests"] += 1
            if method in EVENT_METHODS or method == "exit":
                start = len(bridge.notifications)
                bridge.send({"jsonrpc": "2.0", "method": method, "params": params})
                ping = bridge.request({"jsonrpc": "2.0", "id": f"p{index}", "method": "agent.status",
                                       "params": {"agentId": SENTINEL_AGENT}})
                assert ping is not None and "result" in ping, f"{method} notification: no answer after it"
                warnings = [n["params"]["message"] for n in bridge.notifications[start:]
                            if n["method"] == "log" and n["params"]["level"] == "warning"]
                assert any(method in w and (not path or wire_name in w) for w in warnings), \
                    f"{method} {path}={wrong!r}: no log warning naming the field: {warnings}"
                checked["notifications"] += 1
        assert bridge.new_journal_entries() == [], "an invalid event was journaled"
        after = bridge.request({"jsonrpc": "2.0", "id": "after", "method": "agent.status", "params": {"agentId": "matrix"}})
        assert after == {**before, "id": "after"}, "invalid events changed the agent"
    finally:
        harness.close()
    data = read_db(harness.db)
    assert "matrix" not in data["agents"] and "m1" not in data["sessions"]
    record("fuzz-field-matrix", methods=len(METHODS), fields_times_wrong_values=len(matrix),
           requests_checked=checked["requests"], notifications_checked=checked["notifications"],
           state_changes=0, seconds=timer.seconds)


# -- unicode ids and paths are data, stored and counted exactly ----------------------------------------------------

WILD = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=60)
WILD_IDS = st.one_of(WILD, st.sampled_from([
    "Content-Length: 5\r\n\r\n", "$(touch /tmp/pwned)", "; rm -rf / #", "../../etc/passwd", " ", "\u202eevil",
    "emoji 🧪🚀", "zalgo z̷̢̛a̶l̵g̴o", "line\nbreak", "tab\tsep", "\\x00 not a nul", "C:\\Users\\x", "💥" * 100,
    "/" + "é" * 120]))  # ids longer than LMDB's 511-byte keys: test_a_long_id_does_not_poison_the_database


def test_unicode_agent_ids_and_paths_are_stored_and_counted_exactly(isolated_home: Path, tmp_path: Path) -> None:
    timer = Timer()
    harness = FuzzHarness(isolated_home, tmp_path)
    bridge = harness.bridge
    sent: Counter = Counter()
    sessions: dict[str, str] = {}
    state = {"n": 0}

    @hypothesis_settings(UNICODE_CASES)
    @given(agent=WILD_IDS, session=WILD_IDS, directory=WILD_IDS, call=WILD_IDS)
    def fuzz(agent: str, session: str, directory: str, call: str) -> None:
        state["n"] += 1
        n = state["n"]
        session_id = f"{session}#{n}"
        bridge.send({"jsonrpc": "2.0", "method": "session.created",
                     "params": {"sessionID": session_id, "directory": directory, "agent": {"id": agent}}})
        sessions[session_id] = agent
        response = bridge.request({"jsonrpc": "2.0", "id": f"u{n}", "method": "tool.executed",
                                   "params": {"sessionID": session_id, "callID": call, "tool": "read", "success": True}})
        assert response is not None and response.get("result") == {"counted": True, "xp": 1.0}, response
        sent[agent] += 1
        status = bridge.request({"jsonrpc": "2.0", "id": f"s{n}", "method": "agent.status", "params": {"sessionID": session_id}})
        assert status is not None and status["result"]["agentId"] == agent, status

    try:
        fuzz()
        for agent, count in list(sent.items())[:50]:
            status = bridge.request({"jsonrpc": "2.0", "id": f"final-{agent}", "method": "agent.status",
                                     "params": {"agentId": agent}})
            assert status["result"]["experiencePoints"] == count
    finally:
        harness.close()
    data = read_db(harness.db)
    stored = {agent: data["agents"][agent]["experiencePoints"] for agent in sent}
    assert stored == {agent: float(count) for agent, count in sent.items()}, "an id did not round-trip"
    assert {s: data["sessions"][s]["agentId"] for s in sessions} == sessions
    record("fuzz-unicode", cases=state["n"], distinct_agents=len(sent), events=3 * state["n"], events_lost=0,
           seconds=timer.seconds)


# -- inputs that end the stream on purpose ------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", [
    b"Content-Length: 8388609\r\n\r\n",
    b"Content-Length: 99999999999999999999999999999999\r\n\r\n{}",
    b"Content-Length: 99999999\n",
    b"Content-Length: 20\r\n\r\n{\"jsonrpc\"",            # end of input in the middle of a body
    b"Content-Len",                                       # ... of a header line
    b"Content-Length: 20\r\n",                            # ... of a header block
    b"",
])
def test_a_stream_that_ends_exits_cleanly_flushes_and_restarts(isolated_home: Path, tmp_path: Path, ending: bytes) -> None:
    oversized = ending.startswith(b"Content-Length: ") and int(re.match(rb"Content-Length: (\d+)", ending).group(1)) > MAX_FRAME
    harness = FuzzHarness(isolated_home, tmp_path)
    bridge = harness.bridge
    bridge.send({"jsonrpc": "2.0", "method": "tool.executed",
                 "params": {"sessionID": "e1", "callID": "c1", "tool": "read", "success": True, "agentId": "ender"}})
    assert bridge.request({"jsonrpc": "2.0", "id": 1, "method": "agent.status", "params": {"agentId": "ender"}}) is not None
    bridge.write(ending)
    if not oversized:
        bridge.process.stdin.close()
    try:
        code = bridge.process.wait(60)
    finally:
        bridge.process.kill()
        bridge._thread.join(10)
    assert code == (1 if oversized else 0)
    if oversized:
        assert any(n["method"] == "log" and n["params"]["level"] == "error" and "8388608" in n["params"]["message"]
                   for n in bridge.notifications)
    assert read_db(harness.db)["agents"]["ender"]["experiencePoints"] == 1.0, "the event before the end was not flushed"
    assert not list(bridge.journal.parent.glob("*.jsonl"))
    harness.bridge = harness._start()  # a restart serves again
    assert harness.bridge.request({"jsonrpc": "2.0", "id": 2, "method": "agent.status",
                                   "params": {"agentId": "ender"}})["result"]["experiencePoints"] == 1.0
    harness.close()
    bump("fuzz-stream-endings", "cases")
    bump("fuzz-stream-endings", "restarts")


# -- known breakers, each kept out of the generators above ---------------------------------------------------------------

def _answer(isolated_home: Path, tmp_path: Path, raw: bytes, msg_id: Any) -> dict[str, Any] | None:
    harness = FuzzHarness(isolated_home, tmp_path)
    try:
        bridge = harness.bridge
        start = len(bridge.responses)
        bridge.write(b"Content-Length: %d\r\n\r\n" % len(raw) + raw)
        sentinel, sentinel_id = bridge.sentinel_frame()
        bridge.write(sentinel)
        assert bridge.wait_for(lambda: any(r.get("id") == sentinel_id for r in bridge.responses[start:]))
        found = [r for r in bridge.responses[start:] if r.get("id") == msg_id]
        return found[0] if found else None
    finally:
        harness.close()


@pytest.mark.parametrize("msg_id", [2 ** 64, -(2 ** 63) - 1, 10 ** 30])
def test_a_huge_integer_id_is_answered(isolated_home: Path, tmp_path: Path, msg_id: int) -> None:
    raw = b'{"jsonrpc":"2.0","id":%d,"method":"agent.status","params":{"agentId":"a"}}' % msg_id
    response = _answer(isolated_home, tmp_path, raw, msg_id)
    assert response is not None and "result" in response


@pytest.mark.parametrize("params", [
    b'{"sessionID":"s","callID":"c","tool":"t","success":true,"args":{"timeout":18446744073709551616}}',
    b'{"sessionID":"s","callID":"c","tool":"t","success":true,"title":"fix \\ud83d"}',
    b'{"sessionID":"s\\udc00","callID":"c","tool":"t","success":true}',
    b'{"sessionID":"s","callID":"c","tool":"t","success":true,"args":' + b'{"a":' * 300 + b'1' + b'}' * 300 + b'}',
    b'{"sessionID":"s","callID":"c","tool":"mcp","success":true,"args":{"req":{"jsonrpc":"2.0","method":"m","id":1}}}',
], ids=["int-2^64", "lone-surrogate-title", "lone-surrogate-id", "depth-300", "nested-jsonrpc-object"])
def test_odd_but_valid_json_in_an_event_is_accepted_or_refused_cleanly(isolated_home: Path, tmp_path: Path,
                                                                      params: bytes) -> None:
    raw = b'{"jsonrpc":"2.0","id":"odd","method":"tool.executed","params":%s}' % params
    response = _answer(isolated_home, tmp_path, raw, "odd")
    assert response is not None
    # Either accepted (and counted) or refused as invalid params naming the field; never an internal error.
    assert "result" in response or response["error"]["code"] == -32602, response


def test_agent_status_with_a_lone_surrogate_is_answered_for_the_stored_name(isolated_home: Path,
                                                                           tmp_path: Path) -> None:
    """Issue 27: it was -32603 with a traceback on stderr. A request's params are made storable as
    an event's are: the lone surrogate is U+FFFD, the name an event would have stored."""
    raw = b'{"jsonrpc":"2.0","id":"s","method":"agent.status","params":{"agentId":"a\\ud800"}}'
    response = _answer(isolated_home, tmp_path, raw, "s")
    assert response is not None and response["result"]["agentId"] == "a\ufffd", response
    assert "Traceback" not in (tmp_path / "bridge.stderr").read_text(encoding="utf-8", errors="replace")


def test_report_with_an_invalid_since_is_invalid_params(isolated_home: Path, tmp_path: Path) -> None:
    response = _answer(isolated_home, tmp_path, b'{"jsonrpc":"2.0","id":"r","method":"report","params":{"since":"soon"}}', "r")
    assert response is not None and response["error"]["code"] == -32602 and "since" in response["error"]["message"]


@pytest.mark.parametrize("header", [b"content-length: %d\r\n\r\n", b"Content-Length: %d\n\n"])
def test_one_odd_header_does_not_swallow_the_frames_after_it(isolated_home: Path, tmp_path: Path, header: bytes) -> None:
    harness = FuzzHarness(isolated_home, tmp_path)
    try:
        bridge = harness.bridge
        body = b'{"jsonrpc":"2.0","id":"odd","method":"agent.status","params":{"agentId":"a"}}'
        bridge.write(header % len(body) + body)
        answer = bridge.request({"jsonrpc": "2.0", "id": "next", "method": "agent.status", "params": {"agentId": "a"}},
                                timeout=5)
        assert answer is not None, "the well-formed request after the odd frame was never answered"
    finally:
        harness.bridge.write(b"\r\n")
        harness.close()


def test_a_long_id_does_not_poison_the_database(isolated_home: Path, tmp_path: Path) -> None:
    harness = FuzzHarness(isolated_home, tmp_path)
    bridge = harness.bridge
    long_id = "a" * 600  # 600 bytes: valid per schema.json (maxLength 4096)
    assert schema_valid("tool.executed", {"sessionID": "s", "callID": "c", "tool": "t", "success": True, "agentId": long_id})
    first = bridge.request({"jsonrpc": "2.0", "id": 1, "method": "tool.executed",
                            "params": {"sessionID": "s", "callID": "c1", "tool": "t", "success": True, "agentId": long_id}})
    assert "result" in first or first["error"]["code"] == -32602, first
    bridge.send({"jsonrpc": "2.0", "method": "tool.executed",
                 "params": {"sessionID": "s", "callID": "c2", "tool": "t", "success": True, "agentId": "fine"}})
    flushed = bridge.request({"jsonrpc": "2.0", "id": 2, "method": "flush"})
    assert "result" in flushed and flushed["result"]["transactions"] == 1, f"other events are blocked: {flushed}"
    try:
        assert harness.bridge.close() == 0
    finally:
        harness.bridge.process.kill()
    harness.bridge = harness._start()  # must initialize (the journal left behind must not block it)
    harness.close()
    assert read_db(harness.db)["agents"]["fine"]["experiencePoints"] == 1.0


def test_a_short_hash_reported_twice_counts_once(isolated_home: Path, tmp_path: Path) -> None:
    harness = FuzzHarness(isolated_home, tmp_path)
    bridge = harness.bridge
    project = str(harness.project)
    answers = [bridge.request({"jsonrpc": "2.0", "id": agent, "method": "commit.completed",
                               "params": {"commitHash": "abc", "projectPath": project, "agentId": agent}})
               for agent in ("alice", "bob")]
    assert bridge.request({"jsonrpc": "2.0", "id": "f", "method": "flush"})["result"]["transactions"] == 1
    harness.close()
    data = read_db(harness.db)
    rows: Counter = Counter(r["agentId"] for r in data["commits"].values())
    totals = {agent: record_["totalCommits"] for agent, record_ in data["agents"].items()}
    assert {a: n for a, n in totals.items() if n} == dict(rows), f"totals {totals} vs rows {dict(rows)}"
    assert [a["result"]["counted"] for a in answers] == [True, False], "the same commit must count once"


@pytest.mark.parametrize("client_info", ["opencode", [], ["a"]])
def test_initialize_refuses_a_client_info_that_is_not_an_object(isolated_home: Path, tmp_path: Path, client_info: Any) -> None:
    assert not schema_valid("initialize", {"clientInfo": client_info})
    process = subprocess.Popen([sys.executable, "-m", "bridge", "serve"], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=bridge_env(isolated_home))
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                           "params": {"clientInfo": client_info, "config": {"databasePath": str(tmp_path / "db")}}}).encode()
        out, _ = process.communicate(b"Content-Length: %d\r\n\r\n" % len(body) + body, timeout=60)
    finally:
        process.kill()
    header, _, rest = out.partition(b"\r\n\r\n")
    answer = json.loads(rest[:int(header.split(b": ")[1])])
    assert answer.get("error", {}).get("code") == -32602, answer
