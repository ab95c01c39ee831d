# SPDX-License-Identifier: GPL-3.0-or-later
"""Report writers: console, JSON, JUnit XML and HTML."""
