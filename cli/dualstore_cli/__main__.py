# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m dualstore_cli``: the ``dualstore`` command."""

import sys

from dualstore_cli.main import main

sys.exit(main())
