# SPDX-License-Identifier: GPL-3.0-or-later
"""MongoDB access: documents, sequence fencing, timestamps, filters, idempotency."""
