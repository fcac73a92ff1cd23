"""Writing an agent's definition into a project's OpenCode configuration (`recommend --write`).

Two forms, both as OpenCode 1.18 reads them: the ``agent.<name>`` block of the project's
``opencode.json`` (or ``opencode.jsonc``), or ``.opencode/agent/<name>.md`` (frontmatter and the
prompt as its body). The config file is edited the way install-plugin edits it (install.py): a
textual replacement or insertion of that one block, checked by parsing the result, so comments,
trailing commas and every other setting stay as they are; a numbered backup first. Refused with
one sentence, and nothing changed: a symlink (the block would land in a file elsewhere), a
read-only or unreadable file, a file that is not JSON(C) or whose ``agent`` is not an object.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import attrs

from ..output_files import replace_atomically
from .install import _backup, _config_file, _json_indent, read_only_mode
from .plugin_entry import jsonc_tokens, parse_jsonc

# An agent name that is also a safe file name (OpenCode names agents by their file's name).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class AgentConfigError(Exception):
    """Why nothing was written (one sentence, naming the file)."""


@attrs.frozen
class Written:
    path: Path
    backup: Path | None
    changed: bool


def _member(text: str, toks: list[tuple[int, int, str]], open_index: int, key: str) -> tuple[int, int] | None:
    """The (start, end) of the value of ``key`` in the object whose '{' is token ``open_index``."""
    depth = 0
    i = open_index
    while i < len(toks):
        start, end, kind = toks[i]
        if kind in ("{", "["):
            depth += 1
        elif kind in ("}", "]"):
            depth -= 1
            if depth == 0:
                return None
        elif kind == "s" and depth == 1 and i + 1 < len(toks) and toks[i + 1][2] == ":" \
                and json.loads(text[start:end]) == key:
            return _value_span(toks, i + 2)
        i += 1
    return None


def _value_span(toks: list[tuple[int, int, str]], i: int) -> tuple[int, int]:
    start = toks[i][0]
    if toks[i][2] not in ("{", "["):
        return start, toks[i][1]
    depth = 0
    while i < len(toks):
        kind = toks[i][2]
        if kind in ("{", "["):
            depth += 1
        elif kind in ("}", "]"):
            depth -= 1
            if depth == 0:
                return start, toks[i][1]
        i += 1
    raise ValueError("unbalanced brackets")


def _indented(value: Any, indent: int | str, level: int) -> str:
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    pad = (" " * indent if isinstance(indent, int) else indent) * level
    return text.replace("\n", "\n" + pad)


def _insert(text: str, open_at: int, close_at: int, member: str, indent: int | str, level: int) -> str:
    """``member`` ("key": value) as the first member of the object spanning open_at..close_at."""
    unit = " " * indent if isinstance(indent, int) else indent
    body = text[open_at + 1:close_at]
    if any(True for _ in jsonc_tokens(body)):
        return text[:open_at + 1] + f"\n{unit * level}{member}," + text[open_at + 1:]
    return text[:open_at + 1] + f"\n{unit * level}{member}\n{unit * (level - 1)}" + text[close_at:]


def upsert_agent_block(text: str, name: str, block: dict[str, Any]) -> str:
    """The config text with ``agent.<name>`` set to ``block``; everything else untouched."""
    if not text.strip():
        text = "{\n}\n"
    document = parse_jsonc(text)  # raises ValueError on a broken file: it is not touched
    if not isinstance(document, dict):
        raise ValueError("the config is not a JSON object")
    if "agent" in document and not isinstance(document["agent"], dict):
        raise ValueError('its "agent" is not an object')
    indent = _json_indent(text)
    toks = list(jsonc_tokens(text))
    agent = _member(text, toks, 0, "agent")
    if agent is None:
        member = f'"agent": {{{json.dumps(name, ensure_ascii=False)}: {_indented(block, indent, 2)}}}'
        close = _value_span(toks, 0)[1] - 1
        new = _insert(text, toks[0][0], close, member, indent, 1)
    else:
        agent_index = next(i for i, tok in enumerate(toks) if tok[0] == agent[0])
        existing = _member(text, toks, agent_index, name)
        if existing is not None:
            new = text[:existing[0]] + _indented(block, indent, 2) + text[existing[1]:]
        else:
            member = f"{json.dumps(name, ensure_ascii=False)}: {_indented(block, indent, 2)}"
            new = _insert(text, agent[0], agent[1] - 1, member, indent, 2)
    written = parse_jsonc(new)
    if not isinstance(written, dict) or written.get("agent", {}).get(name) != block \
            or {k: v for k, v in written.items() if k != "agent"} != {k: v for k, v in document.items() if k != "agent"}:
        raise ValueError("the edit could not be made without changing other settings")
    return new


def write_agent(directory: Path, name: str, block: dict[str, Any], *, markdown: str | None = None) -> Written:
    """Put the block into DIR's opencode.json[c]; or, given its ``markdown`` form, write that as
    DIR/.opencode/agent/NAME.md."""
    if markdown is not None:
        if not SAFE_NAME.match(name):
            raise AgentConfigError(f"The agent name {name!r} is not a safe file name; use the opencode.json form "
                                   f"(without --as-file). Nothing was changed.")
        path = directory / ".opencode" / "agent" / f"{name}.md"
        return _write(path, lambda old: markdown)
    path = _config_file(directory)

    def edit(old: str) -> str:
        try:
            return upsert_agent_block(old, name, block)
        except ValueError as exc:
            raise AgentConfigError(f"Cannot edit {path}: {exc}. Nothing was changed.") from None
    return _write(path, edit)


def _write(path: Path, make: Callable[[str], str]) -> Written:
    if path.is_symlink():
        raise AgentConfigError(f"{path} is a symbolic link; agent-tracker writes only a regular file there "
                               f"(edit the file it points to yourself). Nothing was changed.")
    if path.exists() and not path.is_file():
        raise AgentConfigError(f"{path} is not a regular file. Nothing was changed.")
    if mode := read_only_mode(path):
        raise AgentConfigError(f"{path} is read-only (mode {mode}): make it writable (chmod u+w) and run the "
                               f"command again. Nothing was changed.")
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentConfigError(f"Cannot read {path}: {getattr(exc, 'strerror', None) or exc}. "
                               f"Nothing was changed.") from None
    new = make(old)
    if new == old:
        return Written(path, None, False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backup = _backup(path) if path.exists() else None
        with replace_atomically(path) as handle:
            handle.write(new)
    except OSError as exc:
        raise AgentConfigError(f"Cannot write {path}: {exc.strerror or exc}. Nothing was changed.") from None
    return Written(path, backup, True)
