# SPDX-License-Identifier: GPL-3.0-or-later
"""The DualStore load test: a Locust scenario (SSE subscribers, writers) and ``dualstore load``."""
