"""``python -m migrations``: apply pending migrations to ``ETP_DATABASE_URL``."""

import sys

from core.cli import main

if __name__ == "__main__":
    sys.exit(main(["migrate", *sys.argv[1:]]))
