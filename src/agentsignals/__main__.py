"""`python -m agentsignals`: the same command line as `agentsignals`."""

import sys

from agentsignals.cli import main

if __name__ == "__main__":
    sys.exit(main())
