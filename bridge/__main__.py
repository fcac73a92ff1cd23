"""`python -m bridge` runs the bridge (same as `agent-tracker serve`); other subcommands pass through."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["serve"]))
