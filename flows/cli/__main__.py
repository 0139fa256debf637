"""`python -m flows.cli`: the `jvn` command."""

import sys

from flows.cli import main

sys.exit(main())
