# SPDX-License-Identifier: GPL-3.0-or-later
"""The DualStore HTTP conformance harness (dualstore conform)."""
