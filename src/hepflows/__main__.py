"""``python -m hepflows`` is the ``hepflows`` command."""

import sys

from hepflows.cli import main

sys.exit(main())
