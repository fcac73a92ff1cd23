"""Recognise `git commit` and `git push` in bash tool calls, from the command and its output.

Nothing here runs git or touches the filesystem: the command line and output are data.
"""

from __future__ import annotations

import re

import attrs

# `git [-C dir] [-c k=v]... commit|push`, anywhere in a shell line (after &&, ;, | or newline).
_GIT_SUBCOMMAND = re.compile(
    r"(?:^|[;&|\n(]\s*|\s)git(?:\s+(?:-C\s+\S+|-c\s+\S+|--[\w-]+(?:=\S+)?))*\s+(commit|push)(?=$|[\s;&|)])"
)
# "[main 1a2b3c4] message" / "[main (root-commit) 1a2b3c4] message" / "[detached HEAD 1a2b3c4] ..."
_COMMIT_LINE = re.compile(r"^\[[^\]\n]*?\b([0-9a-f]{7,40})\] (.*)$", re.MULTILINE)
# "   1a2b3c4..5d6e7f8  main -> main" or "+ 1a2b3c4...5d6e7f8 main -> main (forced update)"
_PUSH_RANGE = re.compile(r"^\s*[+ ]?\s*[0-9a-f]{7,40}\.\.\.?([0-9a-f]{7,40})\s+\S+\s+->\s+(\S+)", re.MULTILINE)
# " * [new branch]      feat -> feat"
_PUSH_NEW_REF = re.compile(r"^\s*\*\s+\[new (?:branch|tag)\]\s+\S+\s+->\s+(\S+)", re.MULTILINE)
# Output of a push that did not happen (seen when a pipe or `|| true` hides git's exit code).
_PUSH_FAILED = re.compile(
    r"^\s*!\s+\[(?:rejected|remote rejected)\]|^fatal: |^error: failed to push|^Everything up-to-date",
    re.MULTILINE)


@attrs.frozen
class GitCommit:
    short_hash: str
    message: str


@attrs.frozen
class GitPush:
    head: str | None  # None when the output names no range (new branch): the caller knows HEAD
    branch: str | None = None  # the remote ref pushed to, when the output or the command names it


def git_subcommands(command: str) -> set[str]:
    return {match.group(1) for match in _GIT_SUBCOMMAND.finditer(command)}


def recognise_commit(command: str, output: str | None) -> GitCommit | None:
    if "commit" not in git_subcommands(command) or not output:
        return None
    match = _COMMIT_LINE.search(output)
    if not match:
        return None
    return GitCommit(match.group(1), match.group(2).strip())


def recognise_push(command: str, output: str | None) -> GitPush | None:
    if "push" not in git_subcommands(command):
        return None
    if output and _PUSH_FAILED.search(output):
        return None  # nothing was pushed
    match = _PUSH_RANGE.search(output or "")
    if match:
        return GitPush(match.group(1), match.group(2))
    new_ref = _PUSH_NEW_REF.search(output or "")
    return GitPush(None, new_ref.group(1) if new_ref else _pushed_ref(command))


def _pushed_ref(command: str) -> str | None:
    """The ref a `git push [options] REMOTE REFSPEC` names (``HEAD:main`` → main), if it names one."""
    words = command.split()
    try:
        start = words.index("push") + 1
    except ValueError:
        return None
    operands = [word for word in words[start:] if not word.startswith("-")]
    for word in operands[1:2]:  # operands[0] is the remote
        if not any(mark in word for mark in ";&|"):
            return word.rpartition(":")[2] or None
    return None


def hashes_match(a: str, b: str) -> bool:
    """A short hash and a full hash of the same commit (git abbreviates to >= 4 hex digits)."""
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    return len(shorter) >= 4 and longer.startswith(shorter)
