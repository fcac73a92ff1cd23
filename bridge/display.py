"""The one place where untrusted text (agent, model, project names, paths, messages) becomes display text.

Everything a renderer shows that came from outside (the host, a repository, an imported
database, the command line) goes through ``display_name`` (a name: one line, cut when long) or
``display_text`` (a message: one line, longer limit). Both make text that cannot steer what
shows it:

* control characters (C0 but tab, DEL, C1), bidirectional controls (U+202E ...), other format
  characters (zero-width, tag characters, BOM; the zero-width joiner of emoji sequences
  excepted), lone surrogates (a non-UTF-8 command-line argument) and private-use
  non-characters are shown escaped, as Python writes them: ``\\x1b``, ``\\u202e``;
* line breaks (\\r, \\n, \\r\\n, U+0085, U+2028, U+2029) are folded into one visible ``↵``: a name
  never starts a fake table row;
* a name longer than ``NAME_LIMIT`` characters is cut with an ellipsis (``--json`` keeps it whole).

The renderers add what their medium needs on top: rich ``Text`` objects (never markup), HTML
escaping, ``chart_text`` for matplotlib (no math text), ``csv_cell`` for spreadsheets (the OWASP
prefix for formula cells).
"""

from __future__ import annotations

import unicodedata
from typing import Any

NAME_LIMIT = 80
TEXT_LIMIT = 400
ELLIPSIS = "…"
NEWLINE = "↵"

_LINE_BREAKS = ("\r\n", "\r", "\n", "\x85", "\u2028", "\u2029")
_KEPT_FORMAT = {"\u200d"}  # the zero-width joiner: emoji sequences (👩‍💻) need it
_ESCAPED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
# Cells a spreadsheet would read as a formula (OWASP, "CSV Injection"): = + - @ tab CR.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _needs_escape(char: str) -> bool:
    if char == "\t":
        return False
    return unicodedata.category(char) in _ESCAPED_CATEGORIES and char not in _KEPT_FORMAT


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _clean(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text  # the common case: nothing to look at
    for line_break in _LINE_BREAKS:
        text = text.replace(line_break, NEWLINE)
    return "".join(_escaped(char) if _needs_escape(char) else char for char in text).replace("\t", " ")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + ELLIPSIS


def display_name(value: Any, limit: int = NAME_LIMIT) -> str:
    """A name as every renderer shows it: controls escaped, one line, at most ``limit`` characters."""
    return _cut(_clean(value), limit)


def display_text(value: Any, limit: int = TEXT_LIMIT) -> str:
    """A message (a description, a reason, a retrospective): as display_name, a longer limit."""
    return _cut(_clean(value), limit)


def chart_text(value: Any) -> str:
    """Display text made ready for matplotlib: its ``$`` never opens math text (``gpt-$\\foo{$``);
    matplotlib shows ``\\$`` as ``$``."""
    return str(value).replace("$", r"\$")


def csv_cell(value: Any) -> Any:
    """A CSV cell no spreadsheet runs: text starting with = + - @ tab or CR gets a leading ``'``
    (OWASP). Numbers stay numbers (a grade of -1 is a number, not a formula)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
