"""`agent-tracker reinstate AGENT`: a halted agent gets its SP back, recorded as an event."""

from __future__ import annotations

import argparse
import secrets

from .common import EXIT_OK, EXIT_WRITE, CommandError, command_config, open_for_writing

# -- reinstate ---------------------------------------------------------------------------------------------

def cmd_reinstate(args: argparse.Namespace) -> int:
    from ..tracking.service import TrackingService

    config = command_config(args)
    with open_for_writing(config, must_exist=True) as store:
        with store.read() as view:
            before = view.get("agents", args.agent)
            known = sorted(k for k, _ in view.scan("agents"))
        if before is None:
            raise CommandError(f"No agent named {args.agent!r} in {store.path}. Known agents: "
                               f"{', '.join(known) or 'none yet'}.")
        if not before.get("skillPoints", 1) <= 0 and not before.get("halted"):
            print(f"{args.agent} is not halted (SP {before.get('skillPoints'):g}); nothing to reinstate.")
            return EXIT_OK
        service = TrackingService(store, config.scoring, journal_id=f"cli-{secrets.token_hex(6)}",
                                  holds_events=False)
        params = {"agentId": args.agent, **({"reason": args.reason} if args.reason else {})}
        service.handle("agent.reinstate", params)
        result = service.flush()
        if result.errors:
            raise CommandError(result.errors[0], EXIT_WRITE)
        with store.read() as view:
            after = view.get("agents", args.agent) or {}
    print(f"{args.agent} reinstated in {store.path}: SP {before.get('skillPoints'):g} -> "
          f"{after.get('skillPoints'):g}, {'still halted' if after.get('halted') else 'active again'}"
          f"{' (reason: ' + args.reason + ')' if args.reason else ''}.")
    return EXIT_OK
