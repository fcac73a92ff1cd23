"""The plugin's rules for what a tool call carries (util.js): output excerpts, bounded args, success.

The history import must send exactly what the plugin would have sent live; a parity test runs
util.js in Node against these.
"""

from __future__ import annotations

from typing import Any, Mapping

#: Head and tail kept of a tool output by :func:`excerpt`, as the plugin does (EXCERPT_HALF in util.js).
EXCERPT_HALF = 2048



# ---------------------------------------------------------------------------------------------
# the plugin's rules, mirrored (examples/opencode-plugin/plugin/agent-tracker/util.js)


def excerpt(text: str, half: int = EXCERPT_HALF) -> str:
    """The whole text when short, else the first and last ``half`` characters around a marker
    (util.js ``excerpt``; JavaScript counts UTF-16 units, so text outside the BMP may be cut a
    few characters differently)."""
    if len(text) <= 2 * half + 64:
        return text
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n…[agent-tracker: {omitted} characters omitted]…\n{text[-half:]}"



def bound_args(args: Mapping[str, Any], half: int = EXCERPT_HALF) -> Mapping[str, Any]:
    """Tool input with long top-level strings cut to an excerpt (util.js ``boundArgs``)."""
    if not any(isinstance(v, str) and len(v) > 2 * half + 64 for v in args.values()):
        return args
    return {k: excerpt(v, half) if isinstance(v, str) else v for k, v in args.items()}



def tool_succeeded(tool: str, metadata: Mapping[str, Any]) -> bool:
    """Whether a completed tool call succeeded (util.js ``toolSucceeded``)."""
    if tool == "bash":
        exit_code = metadata.get("exit")
        return isinstance(exit_code, int) and not isinstance(exit_code, bool) and exit_code == 0
    if metadata.get("isError") is True:
        return False
    if metadata.get("error"):
        return False
    exit_code = metadata.get("exit")
    if isinstance(exit_code, (int, float)) and not isinstance(exit_code, bool):
        return exit_code == 0
    return True
