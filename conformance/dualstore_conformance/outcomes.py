# SPDX-License-Identifier: GPL-3.0-or-later
"""How a check ends other than by passing: failed, not judged (skipped), or could not observe."""

from __future__ import annotations

from dualstore_conformance.model import Failure


class CheckFailed(Exception):
    """Raised by a check to report a conformance failure."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.title)
        self.failure = failure


class CheckSkipped(Exception):
    """Raised by a check that was not judged (the reason is the message).

    ``why`` says which kind of "not judged": ``not-applicable`` (the target lacks the
    optional feature the check is about) or ``not-configured`` (the run was not given
    something it needs, such as a token or an allowed CORS origin).
    """

    def __init__(self, reason: str, why: str = "not-applicable") -> None:
        super().__init__(reason)
        self.why = why


class CheckUnobserved(Exception):
    """Raised by a check that could not observe what it needs to decide (verdict: error).

    A check that saw nothing has not passed: zero events received, every attempt rate
    limited, a measurement that cannot tell the outcomes apart.
    """
