"""``python -m trio_companion``: see `trio_companion.cli`."""

import sys

from trio_companion.cli import main

if __name__ == "__main__":
    sys.exit(main())
