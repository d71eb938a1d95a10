"""`python -m agentsignals._collector`: the collector without the CLI wrapper."""

from __future__ import annotations

import sys

from agentsignals._collector.service import main

if __name__ == "__main__":
    sys.exit(main())
