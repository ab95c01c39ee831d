# SPDX-License-Identifier: GPL-3.0-or-later
"""Protocol checks, one module per rule family; each module registers its checks on import."""
