# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP resources, one module per endpoint family."""
