# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``dualstore`` command's thin entry package; it imports the rooms only by name."""
