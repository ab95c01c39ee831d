# SPDX-License-Identifier: GPL-3.0-or-later
"""The DualStore HTTP reference server (Falcon ASGI, MongoDB, hnswlib, SSE)."""
