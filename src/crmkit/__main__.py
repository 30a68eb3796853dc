"""Run the crmkit command: ``python -m crmkit demo``."""

import sys

from crmkit.cli import main

sys.exit(main())
