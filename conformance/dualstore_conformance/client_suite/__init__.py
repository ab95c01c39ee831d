# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore conform-client``: judge SSE clients against scripted servers."""
