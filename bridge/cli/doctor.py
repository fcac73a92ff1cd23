"""`agent-tracker doctor --summaries | --rebuild`: the report's summaries checked against the events,
or rebuilt from them (bridge.summaries)."""

from __future__ import annotations

import argparse
import time

from .common import EXIT_FAILED, EXIT_OK, command_config, open_for_reading, open_for_writing, print_json

SHOWN = 20  # differences printed (--json has all)


def cmd_doctor(args: argparse.Namespace) -> int:
    config = command_config(args)
    if args.rebuild:
        return _rebuild(args, config)
    from ..summaries.check import differences

    started = time.perf_counter()
    with open_for_reading(config) as store:
        with store.read() as view:
            found = differences(view)
    elapsed = time.perf_counter() - started
    if args.json:
        print_json({"database": str(store.path), "summaries": found is not None,
                    "differences": [difference.to_wire() for difference in found or []],
                    "durationMs": round(elapsed * 1000, 3)})
    elif found is None:
        print(f"{store.path} has no summaries yet: report and recommend read every event until a bridge "
              f"writes (or `agent-tracker doctor --rebuild` builds them).")
    elif not found:
        print(f"The summaries in {store.path} agree with the events ({elapsed:.1f} s to recompute them).")
    else:
        numbers = "1 number" if len(found) == 1 else f"{len(found)} numbers"
        print(f"{numbers} in the summaries of {store.path} {'differs' if len(found) == 1 else 'differ'} "
              f"from the events:")
        for difference in found[:SHOWN]:
            print(f"  {difference.sentence()}")
        if len(found) > SHOWN:
            print(f"  ... and {len(found) - SHOWN} more (--json lists them all)")
        print("`agent-tracker doctor --rebuild` rewrites them from the events; please report this as a bug.")
    return EXIT_OK if found == [] else EXIT_FAILED


def _rebuild(args: argparse.Namespace, config: object) -> int:
    from ..config import BridgeConfig
    from ..summaries.maintain import rebuild

    assert isinstance(config, BridgeConfig)
    started = time.perf_counter()
    with open_for_writing(config, must_exist=True) as store:
        rows = store.write(lambda view: rebuild(view))
    elapsed = time.perf_counter() - started
    if args.json:
        print_json({"database": str(store.path), "rebuilt": True, "rows": rows, "durationMs": round(elapsed * 1000, 3)})
    else:
        print(f"Rebuilt the summaries of {store.path} from the events in one transaction: {rows:,} rows "
              f"in {elapsed:.1f} s.")
    return EXIT_OK
