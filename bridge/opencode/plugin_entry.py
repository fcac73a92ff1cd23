"""The opencode.json[c] text edit of our one ``plugin`` element (opencode.install's job, kept apart).

JSONC (comments, trailing commas) is tokenised just enough to find one top-level key's array and
insert, replace or remove one element of it, leaving every other byte of the user's file as it was;
each result is re-parsed before it is written.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import attrs

PLUGIN_DIR_NAME = "agent-tracker"
PLUGIN_SPEC = f"./plugin/{PLUGIN_DIR_NAME}/index.js"

# JSONC: just enough to find and edit one top-level key's array without touching anything else


_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*|/\*.*?\*/|\s+|[A-Za-z0-9_.+\-]+|.', re.S)


def jsonc_tokens(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, kind) of each significant token: kind is the punctuation character itself,
    's' for a string, 'w' for a number or literal. Comments and whitespace are skipped."""
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        token = match.group()
        if token.isspace() or token == "\ufeff" or token.startswith("//") or token.startswith("/*"):
            continue
        if token.startswith('"'):
            yield start, end, "s"
        elif len(token) == 1 and token in "{}[]:,":
            yield start, end, token
        elif re.fullmatch(r"[A-Za-z0-9_.+\-]+", token):
            yield start, end, "w"
        else:
            raise ValueError(f"unexpected {token!r} at offset {start}")


def parse_jsonc(text: str) -> Any:
    """Parse JSON with comments and trailing commas (what OpenCode accepts in opencode.json[c])."""
    toks = list(jsonc_tokens(text))
    kept = [text[start:end] for i, (start, end, kind) in enumerate(toks)
            if not (kind == "," and i + 1 < len(toks) and toks[i + 1][2] in ("]", "}"))]
    if not kept:
        return None
    return json.loads(" ".join(kept))


@attrs.define
class _ArraySpan:
    open: int          # index of '['
    close: int         # index of ']'
    elements: list[tuple[int, int]]  # (start, end) of each element's text


def _find_top_level_array(text: str, key: str) -> tuple[int, int, _ArraySpan | None] | None:
    """Locate the top-level object and the array value of ``key`` in it.

    Returns (index of '{', index of its '}', the array span or None when the key is absent), or
    None when the document is not an object. Raises ValueError when ``key`` is not an array.
    """
    toks = list(jsonc_tokens(text))
    if not toks or toks[0][2] != "{":
        return None
    depth = 0
    obj_open = toks[0][0]
    obj_close = -1
    found: _ArraySpan | None = None
    i = 0
    while i < len(toks):
        start, end, kind = toks[i]
        if kind in ("{", "["):
            depth += 1
        elif kind in ("}", "]"):
            depth -= 1
            if depth == 0:
                obj_close = start
                break
        elif kind == "s" and depth == 1 and i + 1 < len(toks) and toks[i + 1][2] == ":":
            if json.loads(text[start:end]) == key:
                if i + 2 >= len(toks) or toks[i + 2][2] != "[":
                    raise ValueError(f'"{key}" is not an array')
                found, i = _scan_array(text, toks, i + 2)
                continue
        i += 1
    if obj_close < 0:
        raise ValueError("unbalanced braces")
    return obj_open, obj_close, found


def _scan_array(text: str, toks: list[tuple[int, int, str]], i: int) -> tuple[_ArraySpan, int]:
    open_index = toks[i][0]
    depth = 0
    elements: list[tuple[int, int]] = []
    element_start: int | None = None
    element_end = -1
    while i < len(toks):
        start, end, kind = toks[i]
        if kind in ("{", "["):
            depth += 1
            if depth == 1:
                i += 1
                continue
        elif kind in ("}", "]"):
            depth -= 1
            if depth == 0:
                if element_start is not None:
                    elements.append((element_start, element_end))
                return _ArraySpan(open_index, start, elements), i + 1
        if depth == 1 and kind == ",":
            if element_start is not None:
                elements.append((element_start, element_end))
            element_start = None
        else:
            if element_start is None:
                element_start = start
            element_end = end
        i += 1
    raise ValueError("unbalanced brackets")


def is_our_entry(value: Any) -> bool:
    spec = value[0] if isinstance(value, list) and value else value
    return isinstance(spec, str) and spec.replace("\\", "/").rstrip("/").endswith(f"plugin/{PLUGIN_DIR_NAME}/index.js")


def entry_text(options: dict[str, Any]) -> str:
    if not options:
        return json.dumps(PLUGIN_SPEC)
    return json.dumps([PLUGIN_SPEC, options])


def upsert_plugin_entry(text: str, options: dict[str, Any]) -> str:
    """The config text with our ``plugin`` element added or replaced; everything else untouched."""
    if not text.strip():
        text = "{\n}\n"
    parse_jsonc(text)  # raises ValueError/JSONDecodeError on a broken file: we do not touch it
    located = _find_top_level_array(text, "plugin")
    if located is None:
        raise ValueError("the config is not a JSON object")
    obj_open, obj_close, array = located
    entry = entry_text(options)
    if array is None:
        body = text[obj_open + 1:obj_close]
        member = f'\n  "plugin": [{entry}]'
        if any(True for _ in jsonc_tokens(body)):
            sep = "," if re.match(r"[ \t]*\r?\n", body) else ",\n  "
            new = text[:obj_open + 1] + member + sep + text[obj_open + 1:].lstrip(" \t")
        elif not body.strip():
            new = text[:obj_open + 1] + member + "\n" + text[obj_close:]
        else:  # only comments inside
            new = text[:obj_open + 1] + member + text[obj_open + 1:]
    else:
        ours = [span for span in array.elements if is_our_entry(parse_jsonc(text[span[0]:span[1]]))]
        if ours:
            start, end = ours[0]
            new = text[:start] + entry + text[end:]
        elif not array.elements:
            new = text[:array.open + 1] + entry + text[array.close:]
        else:
            last_end = array.elements[-1][1]
            new = text[:last_end] + ", " + entry + text[last_end:]
    return new


def remove_plugin_entry(text: str) -> str:
    """The config text without our ``plugin`` element(s)."""
    located = _find_top_level_array(text, "plugin")
    if located is None or located[2] is None:
        return text
    array = located[2]
    spans = array.elements
    for index in range(len(spans) - 1, -1, -1):
        start, end = spans[index]
        if not is_our_entry(parse_jsonc(text[start:end])):
            continue
        if index + 1 < len(spans):       # remove up to the next element
            cut_start, cut_end = start, spans[index + 1][0]
        elif index > 0:                  # last element: remove from the previous one's end
            cut_start, cut_end = spans[index - 1][1], end
        else:                            # only element
            cut_start, cut_end = array.open + 1, array.close
        text = text[:cut_start] + text[cut_end:]
        located = _find_top_level_array(text, "plugin")
        assert located is not None and located[2] is not None
        array = located[2]
        spans = array.elements
        if not spans:  # ours was the only plugin: no `"plugin": []` left behind
            return _without_member(text, located[0], array)
    return text


def _without_member(text: str, object_open: int, array: _ArraySpan) -> str:
    """``text`` without the member ``"plugin": [...]`` whose (empty) array is ``array``, and the
    comma that separated it from its neighbour."""
    key = text.rfind('"plugin"', object_open, array.open)
    if key < 0:
        return text
    start, end = key, array.close + 1
    after = end
    while after < len(text) and text[after] in " \t\r\n":
        after += 1
    if after < len(text) and text[after] == ",":  # a member follows: drop the comma after
        end = after + 1
    else:  # the last member: drop the comma before it, if any
        before = start - 1
        while before > object_open and text[before] in " \t\r\n":
            before -= 1
        if text[before] == ",":
            start = before
    # the blank line the member leaves (its indentation up to the previous line break)
    line_start = text.rfind("\n", 0, start)
    if line_start >= 0 and text[line_start + 1:start].strip() == "" and start == key:
        start = line_start
    return text[:start] + text[end:]
