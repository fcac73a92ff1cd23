"""`agent-tracker reinstate AGENT`: a halted agent gets its SP back, recorded as an event."""

from __future__ import annotations

import argparse

from ..display import display_name, display_text
from .common import EXIT_OK, command_config, open_for_writing, print_json, stored_agent, write_event

# -- reinstate ---------------------------------------------------------------------------------------------

def cmd_reinstate(args: argparse.Namespace) -> int:
    config = command_config(args)
    with open_for_writing(config, must_exist=True) as store:
        before = stored_agent(store, args.agent)
        if not before.get("skillPoints", 1) <= 0 and not before.get("halted"):
            if args.json:
                print_json({"database": str(store.path), "agent": args.agent, "reinstated": False,
                            "skillPointsBefore": before.get("skillPoints"),
                            "skillPointsAfter": before.get("skillPoints"), "halted": False})
                return EXIT_OK
            print(f"{display_name(args.agent)} is not halted (SP {before.get('skillPoints'):g}); nothing to reinstate.")
            return EXIT_OK
        write_event(store, config, "agent.reinstate",
                    {"agentId": args.agent, **({"reason": args.reason} if args.reason else {})})
        with store.read() as view:
            after = view.get("agents", args.agent) or {}
    if args.json:
        print_json({"database": str(store.path), "agent": args.agent, "reinstated": True,
                    "skillPointsBefore": before.get("skillPoints"), "skillPointsAfter": after.get("skillPoints"),
                    "halted": bool(after.get("halted")), "reason": args.reason})
        return EXIT_OK
    print(f"{display_name(args.agent)} reinstated in {display_name(store.path, 400)}: SP "
          f"{before.get('skillPoints'):g} -> {after.get('skillPoints'):g}, "
          f"{'still halted' if after.get('halted') else 'active again'}"
          f"{' (reason: ' + display_text(args.reason) + ')' if args.reason else ''}.")
    return EXIT_OK
