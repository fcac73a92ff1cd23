"""`agent-tracker install-plugin` / `uninstall-plugin`: the OpenCode plugin in or out of a config folder."""

from __future__ import annotations

import argparse

from ..wording import plural
from typing import Any

from .common import EXIT_FAILED, EXIT_OK, CommandError, print_json, resolved_argument


def cmd_install_plugin(args: argparse.Namespace) -> int:
    from ..opencode.install import InstallError, install_plugin

    project = resolved_argument(args.project) if args.project else None
    try:
        bridge_command = args.bridge_command.split() if args.bridge_command else None
        result = install_plugin(project, bridge_command=bridge_command, dry_run=args.dry_run)
    except InstallError as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    hint = history_hint(args)
    if args.json:
        print_json({**install_wire(result), "pastSessions": hint})
        return EXIT_OK
    print(getattr(result, "message", result))
    print(hint)
    return EXIT_OK


def install_wire(result: Any) -> dict[str, Any]:
    return {"configDir": str(result.config_dir), "changed": [str(p) for p in result.changed],
            "unchanged": [str(p) for p in result.unchanged], "backups": [str(p) for p in result.backups],
            "dryRun": result.dry_run, "message": result.message}


def history_hint(args: argparse.Namespace) -> str:
    """How many past sessions in OpenCode's own history `import-opencode` would bring in: those
    the central database does not hold yet. Never fails the install: a problem is the answer."""
    from ..history_import import sessions_not_tracked
    from ..opencode.history import OpenCodeHistory
    from ..opencode.location import OpenCodeHistoryError
    from ..store import Store, StoreError
    from .common import command_config

    try:
        config = command_config(args)
        with OpenCodeHistory.open() as history:
            path = config.resolved_database_path()
            store = Store.open(config, readonly=True) if path is not None and path.is_file() else None
            try:
                total, missing = sessions_not_tracked(store if store and store.available else None, history)
            finally:
                if store is not None:
                    store.close()
            where = history.path
    except OpenCodeHistoryError as exc:
        return f"Past sessions: none to import ({exc})"
    except (StoreError, CommandError, OSError) as exc:
        return f"Past sessions: could not count them ({exc}); `agent-tracker import-opencode --dry-run` shows them."
    if not missing:
        return f"Past sessions: all {total} in OpenCode's history ({where}) are tracked already."
    return (f"Past sessions: OpenCode's history ({where}) holds {missing} of {plural(total, 'session')} agent-tracker has "
            f"not seen; `agent-tracker import-opencode` brings them in (`--dry-run` shows what it would add).")


def cmd_uninstall_plugin(args: argparse.Namespace) -> int:
    from ..opencode.install import InstallError, uninstall_plugin

    project = resolved_argument(args.project) if args.project else None
    try:
        result = uninstall_plugin(project)
    except InstallError as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    if args.json:
        print_json(install_wire(result))
        return EXIT_OK
    print(getattr(result, "message", result))
    return EXIT_OK
