# SPDX-License-Identifier: GPL-3.0-or-later
"""The SSE stream: one gap-aware tailer per collection, a fan-out hub, resume tokens, framing."""
