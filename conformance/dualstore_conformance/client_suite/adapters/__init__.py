# SPDX-License-Identifier: GPL-3.0-or-later
"""Adapters for the project's own clients (the JSON-lines protocol of conform-client)."""
