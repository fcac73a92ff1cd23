#!/usr/bin/env python3
"""A scripted, OpenAI-compatible chat-completions server for driving real OpenCode offline.

Standard library only. It listens on 127.0.0.1 and answers ``POST /v1/chat/completions``
(streaming or not) and ``GET /v1/models``.

Scripts: a JSON file ``{"<name>": [step, ...], ...}``. A conversation selects the script
``<name>`` when one of its user messages contains ``SCRIPT:<name>``. The step played is the
number of assistant turns that follow the last user message (so each tool round trip
advances the script by one). Requests without ``tools`` (OpenCode's title and summary
requests) always get a short plain-text answer. A step is either ``{"tool_calls": [{"name": ..., "arguments":
{...}}, ...]}`` or ``{"text": "..."}``. After the last step, or without a script (OpenCode's
own title/summary requests), the server answers with plain text.

A step may also carry ``"usage": {"prompt_tokens": P, "completion_tokens": C, "cached_tokens": X,
"reasoning_tokens": R}``: the answer then reports that usage in OpenAI's shape (``cached_tokens``
under ``prompt_tokens_details``, ``reasoning_tokens`` under ``completion_tokens_details``), so
OpenCode records known, distinct token counts per step. Without it: 10 prompt + 5 completion.

Every request body is appended to ``--log`` (JSON lines) when given, for debugging.

Usage: ``python server.py --script script.json [--port 0] [--log requests.jsonl]``; it prints
``LISTENING <port>`` on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SCRIPT_RE = re.compile(r"SCRIPT:([A-Za-z0-9_.-]+)")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def choose_step(scripts: dict[str, list[dict[str, Any]]], messages: list[dict[str, Any]]) -> dict[str, Any]:
    name = None
    last_user = -1
    for i, m in enumerate(messages):
        if m.get("role") == "user":
            last_user = i
            found = SCRIPT_RE.search(_text_of(m.get("content")))
            if found:
                name = found.group(1)
    if name is None or name not in scripts:
        return {"text": "ok"}
    turns = sum(1 for m in messages[last_user + 1 :] if m.get("role") == "assistant")
    steps = scripts[name]
    if turns < len(steps):
        return steps[turns]
    return {"text": "done"}


def openai_usage(spec: dict[str, int] | None) -> dict[str, Any]:
    """A step's ``usage`` in the shape of OpenAI's chat-completions answer."""
    if not spec:
        return {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    prompt, completion = int(spec.get("prompt_tokens", 0)), int(spec.get("completion_tokens", 0))
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}
    if "cached_tokens" in spec:
        usage["prompt_tokens_details"] = {"cached_tokens": int(spec["cached_tokens"])}
    if "reasoning_tokens" in spec:
        usage["completion_tokens_details"] = {"reasoning_tokens": int(spec["reasoning_tokens"])}
    return usage


class Handler(BaseHTTPRequestHandler):
    server_version = "scripted-model/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send_json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        else:
            self._send_json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, {"error": "bad json"})
            return
        srv: ScriptedServer = self.server  # type: ignore[assignment]
        srv.record(body)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": "not found"})
            return
        if body.get("tools"):
            step = choose_step(srv.scripts, body.get("messages") or [])
        else:  # OpenCode's own title/summary requests carry no tools
            step = {"text": "Scripted session"}
        model = body.get("model", "scripted")
        srv.counter += 1
        rid = f"chatcmpl-{srv.counter}"
        created = int(time.time())
        calls = [
            {
                "index": i,
                "id": f"call_{srv.counter}_{i}",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))},
            }
            for i, c in enumerate(step.get("tool_calls") or [])
        ]
        text = step.get("text", "" if calls else "ok")
        finish = "tool_calls" if calls else "stop"
        usage = openai_usage(step.get("usage"))
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
            self._send_json(
                200,
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                },
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, with_usage: bool = False) -> None:
            payload: dict[str, Any] = {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            if with_usage:
                payload["usage"] = usage
            self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
            self.wfile.flush()

        chunk({"role": "assistant", "content": ""})
        if text:
            chunk({"content": text})
        for c in calls:
            chunk({"tool_calls": [c]})
        chunk({}, finish, with_usage=True)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, scripts: dict[str, list[dict[str, Any]]], log_path: str | None) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.scripts = scripts
        self.counter = 0
        self.log_path = log_path
        self._lock = threading.Lock()

    def record(self, body: Any) -> None:
        if not self.log_path:
            return
        with self._lock, open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(body) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--script", required=True, help="JSON file: {name: [steps]}")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", default=None, help="append request bodies here (JSON lines)")
    args = ap.parse_args(argv)
    with open(args.script, encoding="utf-8") as f:
        scripts = json.load(f)
    srv = ScriptedServer(args.port, scripts, args.log)
    print(f"LISTENING {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
