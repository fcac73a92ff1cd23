"""Recognise `git commit`, `git revert` and `git push` in bash tool calls, from the command and its output.

Nothing here runs git or touches the filesystem: the command line and output are data. Besides the
commit itself: whether it rewrote the previous one (`--amend`), whether it is a fix-up of an earlier
commit (`fixup!`, `squash!`, `amend!` subjects, as `git commit --fixup` writes them), and which
commits it reverts (`git revert <hash>...`, or a message saying "This reverts commit <hash>").
"""

from __future__ import annotations

import re
from datetime import timedelta

import attrs

# How soon after a commit an amend or a `fixup!` commit of it (in the same session) must come to
# count as its fix-up (the report's cleanCommits).
FIXUP_WINDOW = timedelta(minutes=30)

# `git [-C dir] [-c k=v]... commit|revert|push`, anywhere in a shell line (after &&, ;, | or newline).
_GIT_SUBCOMMAND = re.compile(
    r"(?:^|[;&|\n(]\s*|\s)git(?:\s+(?:-C\s+\S+|-c\s+\S+|--[\w-]+(?:=\S+)?))*\s+(commit|revert|push)(?=$|[\s;&|)])"
)
# What follows `git revert` up to the end of that shell command.
_REVERT_OPERANDS = re.compile(
    r"(?:^|[;&|\n(]\s*|\s)git(?:\s+(?:-C\s+\S+|-c\s+\S+|--[\w-]+(?:=\S+)?))*\s+revert((?:\s+[^\s;&|)]+)*)")
# `git commit ... --amend` within one shell command.
_AMEND = re.compile(r"(?:^|[;&|\n(]\s*|\s)git\b[^;&|\n]*?\scommit\b[^;&|\n]*?\s--amend(?=$|[\s;&|)])")
# The line git writes into a revert commit's message (and agents copy into their own).
_REVERTS_COMMIT = re.compile(r"This reverts commit ([0-9a-f]{4,40})\b", re.IGNORECASE)
# `git revert` options that take a value as the next word.
_REVERT_VALUE_OPTIONS = {"-m", "--mainline", "-S", "--strategy", "-X", "--strategy-option"}
_HEX = re.compile(r"[0-9a-f]{4,40}")
_FIXUP_SUBJECT = re.compile(r"^(fixup|squash|amend)! ", re.IGNORECASE)
HEAD = "HEAD"  # a revert of HEAD: the caller knows the project's latest commit
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
    amend: bool = False  # `git commit --amend`: it replaces the commit before it
    # the commits it reverts: hashes as written (4-40 hex digits) or HEAD
    reverts: tuple[str, ...] = ()


@attrs.frozen
class GitPush:
    head: str | None  # None when the output names no range (new branch): the caller knows HEAD
    branch: str | None = None  # the remote ref pushed to, when the output or the command names it


def git_subcommands(command: str) -> set[str]:
    return {match.group(1) for match in _GIT_SUBCOMMAND.finditer(command)}


def recognise_commit(command: str, output: str | None) -> GitCommit | None:
    """The commit a successful `git commit` or `git revert` made, from its output line."""
    subcommands = git_subcommands(command)
    if not ({"commit", "revert"} & subcommands) or not output:
        return None
    match = _COMMIT_LINE.search(output)
    if not match:
        return None
    reverts = list(revert_operands(command)) if "revert" in subcommands else []
    reverts += reverted_in_message(command)
    return GitCommit(match.group(1), match.group(2).strip(), amend=bool(_AMEND.search(command)),
                     reverts=tuple(dict.fromkeys(reverts)))


def revert_operands(command: str) -> list[str]:
    """The commits `git revert A B` names: hashes (lowercased) and HEAD; ranges and other revisions
    (HEAD~2, a branch) are left out, as nothing here can resolve them."""
    found: list[str] = []
    for match in _REVERT_OPERANDS.finditer(command):
        words = match.group(1).split()
        skip = False
        for word in words:
            if skip:
                skip = False
            elif word in _REVERT_VALUE_OPTIONS:
                skip = True
            elif word.startswith("-"):
                continue
            elif word == HEAD:
                found.append(HEAD)
            elif _HEX.fullmatch(word.lower()):
                found.append(word.lower())
    return found


def reverted_in_message(text: str | None) -> list[str]:
    """Hashes named by "This reverts commit <hash>" lines (git's own revert message)."""
    return [match.group(1).lower() for match in _REVERTS_COMMIT.finditer(text or "")]


def fixup_subject(message: str | None) -> tuple[str, str] | None:
    """(kind, subject of the commit it fixes) of a `fixup! <subject>` (or squash!/amend!) message."""
    if not message:
        return None
    first = message.strip().splitlines()[0] if message.strip() else ""
    match = _FIXUP_SUBJECT.match(first)
    if not match:
        return None
    subject = first
    while (inner := _FIXUP_SUBJECT.match(subject)) is not None:  # fixup! fixup! x fixes x
        subject = subject[inner.end():]
    return match.group(1).lower(), subject.strip()


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
