"""Install the OpenCode plugin the way OpenCode 1.18 loads plugins, and remove it again.

Layout (global install in ``$XDG_CONFIG_HOME/opencode`` or ``~/.config/opencode``; a
project install in ``DIR/.opencode``, which OpenCode reads as a config folder too)::

    <config>/plugin/agent-tracker/index.js, tracker.js, commands.js, tools.js, bridge.js, util.js
    <config>/plugin/agent-tracker/install.json     (what this installer changed, for uninstall)
    <config>/package.json        + "vscode-jsonrpc" in dependencies (OpenCode installs it there)
    <config>/opencode.json[c]    + "plugin": [["./plugin/agent-tracker/index.js", {options}]]

Why this layout (verified with OpenCode 1.18.33):

- OpenCode auto-loads only top-level ``{plugin,plugins}/*.{js,ts}`` files, so the plugin's
  modules live in a subfolder and are loaded through a ``plugin`` entry in the config file,
  which is also the only place OpenCode passes plugin *options* from (``bridgeCommand``...).
  A relative spec resolves against the folder of the config file that names it.
- On start OpenCode runs its own npm install in every config folder (adding
  ``@opencode-ai/plugin`` to ``package.json`` and keeping the dependencies already there), so
  declaring ``vscode-jsonrpc`` in that ``package.json`` is how the plugin gets its dependency.
- ``/grade`` needs no file: the plugin's ``config`` hook adds the command.

User files are edited, never rewritten: the config file (JSON or JSONC with comments and
trailing commas) gets a textual insertion or removal of our one ``plugin`` element, checked by
re-parsing the result; a backup (``<file>.agent-tracker.bak``, then ``-2``, ``-3``...: never
overwritten) is written before any change, at the file's mode. A symlinked file (dotfiles) is
written through to its target and keeps its mode and owner (a 0600 file holding an API key stays
0600); a read-only one is refused. Everything is idempotent: a second install changes nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import stat
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from ..output_files import UnsafeOutput, keep_mode_and_owner, refuse_database_files, replace_atomically
from ..safe_read import FileRefused, check_folder, check_regular, read_regular
from ..wording import plural
# The config file's one plugin element, edited as text (plugin_entry); re-exported for callers.
from .plugin_entry import (PLUGIN_DIR_NAME, PLUGIN_SPEC, entry_text, is_our_entry, parse_jsonc, remove_plugin_entry,
                           upsert_plugin_entry)

__all__ = ["PLUGIN_DIR_NAME", "PLUGIN_SPEC", "parse_jsonc", "remove_plugin_entry", "upsert_plugin_entry"]

MARKER = "install.json"
BACKUP_SUFFIX = ".agent-tracker.bak"
DEFAULT_COMMAND = ["agent-tracker", "serve"]
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # an opencode.json or package.json larger than this is not one


class InstallError(Exception):
    """The install cannot proceed without overwriting something of the user's."""


@attrs.frozen
class InstallResult:
    """What an install or uninstall did. ``changed`` lists files written, changed or removed."""

    config_dir: Path
    changed: list[Path]
    message: str
    unchanged: list[Path] = attrs.field(factory=list)
    backups: list[Path] = attrs.field(factory=list)
    dry_run: bool = False

    @property
    def files(self) -> list[Path]:
        return self.changed


# ---------------------------------------------------------------------------------------------
# where


def global_config_dir(environ: dict[str, str] | None = None) -> Path:
    """OpenCode's global config folder: ``$XDG_CONFIG_HOME/opencode`` or ``~/.config/opencode``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME")
    if base:
        return Path(base) / "opencode"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".config" / "opencode"


def config_dir_for(project: Path | None) -> Path:
    return Path(project).expanduser().resolve() / ".opencode" if project is not None else global_config_dir()


def plugin_source() -> Any:
    """The plugin's files shipped inside the Python package (``bridge/data/opencode-plugin``)."""
    return resources.files("bridge") / "data" / "opencode-plugin"


def _source_files() -> dict[str, bytes]:
    root = plugin_source() / PLUGIN_DIR_NAME
    files = {entry.name: entry.read_bytes() for entry in root.iterdir()
             if entry.is_file() and entry.name.endswith(".js")}
    if "index.js" not in files:
        raise InstallError(f"the plugin files are missing from the package ({root})")
    return files


def _source_dependencies() -> dict[str, str]:
    data = json.loads((plugin_source() / "package.json").read_text(encoding="utf-8"))
    return dict(data.get("dependencies") or {})


# ---------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------
# install / uninstall


@attrs.define
class _Plan:
    config_dir: Path
    dry_run: bool
    changed: list[Path] = attrs.field(factory=list)
    unchanged: list[Path] = attrs.field(factory=list)
    backups: list[Path] = attrs.field(factory=list)

    def write(self, path: Path, data: bytes, *, backup: bool = False) -> None:
        if _current_bytes(path) == data:
            self.unchanged.append(path)
            return
        try:
            refuse_database_files(path, None, what=f"the plugin's {path.name}")
        except UnsafeOutput as exc:
            raise InstallError(str(exc)) from None
        if read_only := read_only_mode(path):
            raise InstallError(f"{path} is read-only (mode {read_only}){self._so_far()}: make it writable "
                               f"(chmod u+w) and run the command again")
        self.changed.append(path)
        if self.dry_run:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if backup and path.exists():
                self.backups.append(_backup(path))
            # Through a symlink to its target (a dotfiles setup), keeping the file's mode and owner.
            with replace_atomically(path, binary=True) as handle:
                handle.write(data)
        except OSError as exc:
            self.changed.pop()
            raise InstallError(f"cannot write {path}: {exc.strerror or exc}{self._so_far()}") from None

    def remove(self, path: Path) -> None:
        if not path.exists():
            return
        self.changed.append(path)
        if not self.dry_run:
            try:
                path.unlink()
            except OSError as exc:
                self.changed.pop()
                raise InstallError(f"cannot remove {path}: {exc.strerror or exc}{self._so_far()}") from None

    def _so_far(self) -> str:
        if not self.changed or self.dry_run:
            return "; nothing was changed"
        changed = len(self.changed)
        return (f"; {plural(changed, 'file')} {'was' if changed == 1 else 'were'} changed before it (running the "
                f"command again once it can be written finishes the job)")


def read_only_mode(path: Path) -> str | None:
    """The mode of a regular file nobody may write ("0444"), else None. Such a file is the user's
    "do not touch", also for root, whom the kernel would let write it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # absent: created, and the folder's permissions decide
    return f"{stat.S_IMODE(mode):04o}" if stat.S_ISREG(mode) and not mode & 0o222 else None


def _backup(path: Path) -> Path:
    """A copy of the file beside it (beside the symlink, not in the dotfiles folder it points to),
    at the original's mode and owner, never over an earlier backup: <name>.agent-tracker.bak,
    then <name>.agent-tracker-2.bak, -3, ..."""
    data = path.read_bytes()
    original = os.stat(path)
    for number in itertools.count(1):
        name = path.name + (BACKUP_SUFFIX if number == 1 else f".agent-tracker-{number}.bak")
        try:
            # Created at the original's mode (or narrower, by the umask), so a 0600 file holding an
            # API key is never readable by others, not even for a moment.
            fd = os.open(path.with_name(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         stat.S_IMODE(original.st_mode) & 0o777)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            keep_mode_and_owner(fd, original)
            handle.write(data)
        return path.with_name(name)
    raise AssertionError("unreachable")


def _config_file(config_dir: Path) -> Path:
    """The config file to edit: an existing opencode.jsonc, else opencode.json (created if needed)."""
    for name in ("opencode.jsonc", "opencode.json"):
        if (config_dir / name).exists():
            return config_dir / name
    return config_dir / "opencode.json"


def _current_bytes(path: Path) -> bytes | None:
    """What a file the install writes holds now (None: absent), read by the bounded reader."""
    try:
        return read_regular(path, MAX_CONFIG_BYTES, whole=True)
    except FileRefused as exc:
        raise InstallError(f"{exc}; nothing was changed") from None


def _read_text(path: Path) -> str:
    data = _current_bytes(path)
    try:
        return "" if data is None else data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InstallError(f"cannot read {path}: {exc}; nothing was changed") from None


def _refuse_unusable(target: Path, files: list[str]) -> None:
    """Every path the install reads or writes, checked before anything is written: a FIFO must not
    hang it, a symlink loop must not stop it halfway (package.json written, the config refused)."""
    folder = target / "plugin" / PLUGIN_DIR_NAME
    try:
        for directory in (target, target / "plugin", folder):
            check_folder(directory)
        for name in ("opencode.jsonc", "opencode.json", "package.json"):
            check_regular(target / name)
        for name in (MARKER, *files):
            check_regular(folder / name)
    except FileRefused as exc:
        raise InstallError(f"{exc}; nothing was changed: remove or fix it and run the command again") from None


def _default_bridge_command() -> list[str] | None:
    """None when `agent-tracker` is on PATH (the plugin's default); else this Python's module."""
    if shutil.which("agent-tracker"):
        return None
    return [sys.executable, "-m", "bridge", "serve"]


def install_plugin(project: Path | None, *, bridge_command: list[str] | None = None,
                   dry_run: bool = False, config_dir: Path | None = None) -> InstallResult:
    """Install (or update) the plugin globally, or for ``project`` (in ``project/.opencode``).

    ``bridge_command`` is stored as the plugin's ``bridgeCommand`` option; by default the
    plugin runs ``agent-tracker serve``, or this Python's ``-m bridge serve`` when
    ``agent-tracker`` is not on PATH. ``config_dir`` overrides the target folder (tests).
    """
    target = Path(config_dir) if config_dir is not None else config_dir_for(project)
    if project is not None and not Path(project).expanduser().is_dir():
        raise InstallError(f"project folder {project} does not exist")
    plan = _Plan(target, dry_run)
    files = _source_files()
    _refuse_unusable(target, sorted(files))
    command = list(bridge_command) if bridge_command else _default_bridge_command()
    options: dict[str, Any] = {"bridgeCommand": command} if command and command != DEFAULT_COMMAND else {}

    # 1. the config entry (first: a broken user config stops the install before any write)
    config_path = _config_file(target)
    old_config = _read_text(config_path)
    try:
        new_config = upsert_plugin_entry(old_config, options)
        parsed = parse_jsonc(new_config)
    except ValueError as exc:
        raise InstallError(f"{config_path} is not valid JSON/JSONC ({exc}); fix it or add "
                           f'{entry_text(options)} to its "plugin" list by hand') from None
    if not any(is_our_entry(item) for item in (parsed or {}).get("plugin", [])):
        raise InstallError(f"could not add the plugin entry to {config_path}")
    if new_config != old_config and (read_only := read_only_mode(config_path)):
        raise InstallError(f"{config_path} is read-only (mode {read_only}); nothing was changed: make it "
                           f"writable (chmod u+w) and run the command again")

    # 2. package.json dependency
    package_path = target / "package.json"
    old_package = _read_text(package_path)
    try:
        package = json.loads(old_package) if old_package.strip() else {}
    except ValueError as exc:
        raise InstallError(f"{package_path} is not valid JSON ({exc}); add "
                           f"{json.dumps(_source_dependencies())} to its dependencies by hand") from None
    if not isinstance(package, dict):
        raise InstallError(f"{package_path} is not a JSON object")
    dependencies = package.get("dependencies")
    if dependencies is not None and not isinstance(dependencies, dict):
        raise InstallError(f'"dependencies" in {package_path} is not an object')
    marker_path = target / "plugin" / PLUGIN_DIR_NAME / MARKER
    previous = _read_marker(marker_path)
    added: list[str] = list(previous.get("addedDependencies", []))
    wanted = _source_dependencies()
    new_deps = dict(dependencies or {})
    for name, version in wanted.items():
        if name not in new_deps:
            new_deps[name] = version
            added.append(name)
        elif name in added and new_deps[name] != version:
            new_deps[name] = version  # ours: keep it current
    if new_deps != (dependencies or {}):
        package["dependencies"] = new_deps
        indent = _json_indent(old_package)
        plan.write(package_path, (json.dumps(package, indent=indent) + "\n").encode(), backup=True)
    else:
        plan.unchanged.append(package_path)

    # 3. the plugin's files (our folder: stale files of an older version are removed)
    folder = target / "plugin" / PLUGIN_DIR_NAME
    for name, data in sorted(files.items()):
        plan.write(folder / name, data)
    if folder.is_dir():
        for stale in sorted(folder.glob("*.js")):
            if stale.name not in files:
                plan.remove(stale)
    plan.write(marker_path, (json.dumps({
        "installedBy": "agent-tracker install-plugin",
        "configFile": config_path.name,
        "addedDependencies": sorted(set(added)),
        "options": options,
    }, indent=2) + "\n").encode())

    # 4. the config entry, written last
    plan.write(config_path, new_config.encode(), backup=True)

    where = f"project {project}" if project is not None else "all projects (global)"
    if plan.changed:
        verb = "Would install" if dry_run else "Installed"
        message = (f"{verb} the agent-tracker OpenCode plugin for {where} in {target}: "
                   f"{plural(len(plan.changed), 'file')} {'to change' if dry_run else 'written'}. OpenCode installs "
                   f"its npm dependency ({', '.join(wanted)}) on its next start; the commands /grade, /bug, /retro "
                   f"and /recommend and the tools tracker_grade, tracker_status, tracker_report and tracker_retro "
                   f"are available in new sessions.")
        if options.get("bridgeCommand"):
            message += f" Bridge command: {' '.join(options['bridgeCommand'])}."
    else:
        message = f"The agent-tracker OpenCode plugin is already installed for {where} in {target}; nothing changed."
    if plan.backups:
        message += f" Backup of the previous config: {', '.join(str(p) for p in plan.backups)}."
    return InstallResult(target, plan.changed, message, plan.unchanged, plan.backups, dry_run)


def uninstall_plugin(project: Path | None, *, config_dir: Path | None = None,
                     dry_run: bool = False) -> InstallResult:
    """Remove what :func:`install_plugin` added; the user's other config stays as it is."""
    target = Path(config_dir) if config_dir is not None else config_dir_for(project)
    plan = _Plan(target, dry_run)
    folder = target / "plugin" / PLUGIN_DIR_NAME
    _refuse_unusable(target, sorted(_source_files()))
    marker = _read_marker(folder / MARKER)

    for name in ("opencode.jsonc", "opencode.json"):
        path = target / name
        if not path.exists():
            continue
        old = _read_text(path)
        try:
            new = remove_plugin_entry(old)
            parse_jsonc(new)
        except ValueError:
            continue  # not ours to fix; the entry (if any) stays
        if new != old:
            plan.write(path, new.encode(), backup=True)

    package_path = target / "package.json"
    added = marker.get("addedDependencies", [])
    if added and package_path.exists():
        try:
            package = json.loads(_read_text(package_path))
        except ValueError:
            package = None
        if isinstance(package, dict) and isinstance(package.get("dependencies"), dict):
            deps = {k: v for k, v in package["dependencies"].items() if k not in added}
            if deps != package["dependencies"]:
                package["dependencies"] = deps
                plan.write(package_path, (json.dumps(package, indent=_json_indent(_read_text(package_path))) + "\n").encode())

    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and (path.suffix == ".js" or path.name == MARKER):
                plan.remove(path)
        if not dry_run:
            try:
                folder.rmdir()
                (target / "plugin").rmdir()
            except OSError:
                pass  # not empty: something else lives there

    where = f"project {project}" if project is not None else "all projects (global)"
    if plan.changed:
        verb = "Would remove" if dry_run else "Removed"
        message = (f"{verb} the agent-tracker OpenCode plugin for {where} from {target} "
                   f"({plural(len(plan.changed), 'file')}).")
    else:
        message = f"The agent-tracker OpenCode plugin is not installed for {where} in {target}; nothing changed."
    if plan.backups:
        message += f" Backup of the previous config: {', '.join(str(p) for p in plan.backups)}."
    return InstallResult(target, plan.changed, message, plan.unchanged, plan.backups, dry_run)


def _read_marker(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_regular(path, MAX_CONFIG_BYTES, whole=True) or b"")
    except (FileRefused, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _json_indent(text: str) -> int | str:
    match = re.search(r'\n([ \t]+)"', text)
    if not match:
        return 2
    indent = match.group(1)
    return len(indent) if set(indent) == {" "} else indent
