"""Configuration versions: an agent's whole definition, canonicalised, hashed, stored once, compared.

What the plugin sends with ``agent.configured`` (protocol/schema.json ``$defs/AgentDefinition``) is
what the model was really given: the agent's resolved definition (prompt, mode, temperature, topP,
steps, permission, options), the parameters OpenCode actually sent (``sent``: OpenCode drops a
configured temperature the model does not declare), the tools offered, and the session-wide parts
(``instructions``: file names with a hash of their contents; ``mcp``: server names).

The one place of these rules:
  * canonical form: the definition without ``model`` (the model is the setup's own dimension, so one
    definition run on two models is one version), the prompt without whitespace at its ends, lists
    of names sorted, then JSON with sorted keys and no spaces (canonical_json);
  * version = the first 16 hex digits of the SHA-256 of that JSON (version_of); a label is the
    agent and the first 6 (``build@3f2a9c``); sessions from before the plugin recorded versions
    (imported from OpenCode's history, migrated, or older bridges) have the version ``unknown``;
  * the ``configs`` sub-database: version → ``{version, agentId, definition, firstSeenAt,
    lastSeenAt, projects[]}``; the prompt is stored there once per version, never per session;
  * what changed between two versions, in words (describe_change), and what an export may show of
    a definition (without_prompts).

Pure (no I/O beyond a ReadView): tracking records versions, report and cli read them.
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Any, Iterable

import orjson

from ..store import ReadView

UNKNOWN_VERSION = "unknown"
VERSION_DIGITS = 16
LABEL_DIGITS = 6
# Not part of the identity: the model is a dimension of the setup of its own.
NOT_IDENTITY = ("model",)
# Lists of names whose order means nothing (sorted in the canonical form).
NAME_LISTS = ("tools", "mcp")
PROMPT = "prompt"


def canonical(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition as it is stored and hashed (see the module docstring)."""
    found = {name: value for name, value in definition.items() if name not in NOT_IDENTITY}
    prompt = found.get(PROMPT)
    if isinstance(prompt, str):
        found[PROMPT] = prompt.strip()
    for name in NAME_LISTS:
        value = found.get(name)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            found[name] = sorted(set(value))
    instructions = found.get("instructions")
    if isinstance(instructions, list) and all(isinstance(item, dict) for item in instructions):
        found["instructions"] = sorted(instructions, key=lambda item: str(item.get("path", "")))
    return found


def canonical_json(definition: dict[str, Any]) -> bytes:
    return orjson.dumps(canonical(definition), option=orjson.OPT_SORT_KEYS)


def version_of(definition: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(definition)).hexdigest()[:VERSION_DIGITS]


def label(agent: str, version: str | None) -> str:
    """``build@3f2a9c``; ``build@unknown`` for a session without a recorded version."""
    if not version or version == UNKNOWN_VERSION:
        return f"{agent}@{UNKNOWN_VERSION}"
    return f"{agent}@{version[:LABEL_DIGITS]}"


def version_or_unknown(value: Any) -> str:
    return value if isinstance(value, str) and value else UNKNOWN_VERSION


# -- storage -------------------------------------------------------------------------------------

def stored_versions(view: ReadView, agent: str | None = None) -> dict[str, dict[str, Any]]:
    """version → its ``configs`` record (of one agent, or all), skipping records that are not ours."""
    found: dict[str, dict[str, Any]] = {}
    for _, record in view.scan("configs"):
        if not isinstance(record, dict) or not isinstance(record.get("version"), str) \
                or not isinstance(record.get("definition"), dict):
            continue
        if agent is None or record.get("agentId") == agent:
            found[record["version"]] = record
    return found


def newest_first(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda record: (str(record.get("firstSeenAt") or ""), record["version"]),
                  reverse=True)


# -- privacy -------------------------------------------------------------------------------------

def without_prompts(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition with its prompt text replaced by the prompt's hash and length."""
    prompt = definition.get(PROMPT)
    if not isinstance(prompt, str):
        return dict(definition)
    shown = {name: value for name, value in definition.items() if name != PROMPT}
    shown["promptSha256"] = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()
    shown["promptLength"] = len(prompt)
    return shown


# -- what changed ----------------------------------------------------------------------------------

def describe_change(before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    """What changed from one version to the next, in words: ``temperature 0.2 → 0.7; prompt: 3 lines
    changed; tools: +webfetch``; the first version says ``first version``."""
    if before is None:
        return "first version"
    parts = changes(before, after)
    return "; ".join(parts) if parts else "no difference"


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    old, new = canonical(before), canonical(after)
    parts: list[str] = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) == new.get(name):
            continue
        was, now = old.get(name), new.get(name)
        if name == PROMPT:
            parts.append(_prompt_change(was, now))
        elif name == "system" and isinstance(was, dict) and isinstance(now, dict):
            parts.append(f"system prompt changed ({_value(was.get('length'))} → {_value(now.get('length'))} characters)")
        elif _names(was) is not None and _names(now) is not None or name in NAME_LISTS:
            parts.append(f"{name}: {_list_change(_names(was) or [], _names(now) or [])}")
        elif isinstance(was, dict) and isinstance(now, dict):
            parts.extend(f"{name}.{part}" for part in changes(was, now))
        else:
            parts.append(f"{name} {_value(was)} → {_value(now)}")
    return parts


def _prompt_change(was: Any, now: Any) -> str:
    if not isinstance(was, str):
        return "prompt: added" if isinstance(now, str) else "prompt changed"
    if not isinstance(now, str):
        return "prompt: removed"
    matcher = difflib.SequenceMatcher(None, was.splitlines(), now.splitlines(), autojunk=False)
    changed = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")
    if not changed:  # only whitespace inside lines differs from the line split's view
        changed = 1
    return f"prompt: {changed} line{'s' if changed != 1 else ''} changed"


def _names(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def _list_change(was: list[str], now: list[str]) -> str:
    added = [f"+{name}" for name in now if name not in was]
    removed = [f"-{name}" for name in was if name not in now]
    return " ".join(added + removed) or "reordered"


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return orjson.dumps(value).decode() if len(value) <= 40 else f"({len(value)} characters)"
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return orjson.dumps(value).decode()
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= 60 else text[:57] + "..."


# -- handing a version back to OpenCode ----------------------------------------------------------------

# definition field -> OpenCode's agent config key (opencode.json ``agent.<name>``, and the
# frontmatter of .opencode/agent/NAME.md), in the order they are written.
HANDED_BACK = (("description", "description"), ("mode", "mode"), ("temperature", "temperature"),
               ("topP", "top_p"), ("steps", "steps"), ("configuredPermission", "permission"),
               ("options", "options"))


def opencode_agent_block(definition: dict[str, Any] | None, model: str | None) -> dict[str, Any]:
    """The opencode.json ``agent.<name>`` block of a version: the model and its whole definition
    (prompt included). Permissions are handed back as the user configured them (the resolved rules
    hold OpenCode's defaults too); an empty ``options`` is left out."""
    block: dict[str, Any] = {}
    if model:
        block["model"] = model
    definition = definition or {}
    for name, config_key in HANDED_BACK:
        value = definition.get(name)
        if value is None or (name == "options" and not value):
            continue
        block[config_key] = value
    prompt = definition.get(PROMPT)
    if isinstance(prompt, str) and prompt:
        block["prompt"] = prompt
    return block


def agent_markdown(block: dict[str, Any]) -> str:
    """The same block as ``.opencode/agent/NAME.md``: YAML frontmatter (each value written as JSON,
    which YAML reads as it is: no text is ever interpreted), then the prompt as the body."""
    lines = ["---"]
    for name, value in block.items():
        if name != "prompt":
            lines.append(f"{name}: {orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()}")
    lines.append("---")
    prompt = block.get("prompt")
    return "\n".join(lines) + "\n" + (f"{prompt}\n" if isinstance(prompt, str) and prompt else "")
