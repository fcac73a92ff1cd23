"""`agent-tracker install-plugin` / `uninstall-plugin`: the OpenCode plugin in or out of a config folder."""

from __future__ import annotations

import argparse

from .common import EXIT_FAILED, EXIT_OK, CommandError, resolved_argument


def cmd_install_plugin(args: argparse.Namespace) -> int:
    from ..opencode.install import InstallError, install_plugin

    project = resolved_argument(args.project) if args.project else None
    try:
        bridge_command = args.bridge_command.split() if args.bridge_command else None
        result = install_plugin(project, bridge_command=bridge_command, dry_run=args.dry_run)
    except InstallError as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    print(getattr(result, "message", result))
    return EXIT_OK



def cmd_uninstall_plugin(args: argparse.Namespace) -> int:
    from ..opencode.install import InstallError, uninstall_plugin

    project = resolved_argument(args.project) if args.project else None
    try:
        result = uninstall_plugin(project)
    except InstallError as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    print(getattr(result, "message", result))
    return EXIT_OK
