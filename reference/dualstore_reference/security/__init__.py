# SPDX-License-Identifier: GPL-3.0-or-later
"""Auth, CORS wiring, rate limits and per-IP stream slots."""
