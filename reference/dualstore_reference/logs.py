# SPDX-License-Identifier: GPL-3.0-or-later
"""Log redaction: bearer tokens (access_token query values, Authorization values) never logged."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

REDACTED = "[REDACTED]"
SECRET_PARAMETERS = frozenset({"access_token"})
"""Query parameters whose value is a credential (compared after percent-decoding)."""
_QUERY_PAIR = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;\s\"'?#]+)=(?P<value>[^&;\s\"'#]*)")
_AUTHORIZATION = re.compile(
    r"(?i)(?P<lead>\bauthorization[\"']?\s*[:=,]\s*[\"']?)(?P<value>[^\r\n\"']*)"
)
_BEARER = re.compile(r"(?i)\b(?P<scheme>bearer)\s+[A-Za-z0-9\-._~+/]+=*")
LOGGERS = ("", "gunicorn.error", "gunicorn.access", "uvicorn.error", "uvicorn.access")
"""Loggers whose handlers get the redaction filter (uvicorn's share gunicorn's handlers)."""


def redact(text: str) -> str:
    """text with credential values replaced by ``[REDACTED]``."""
    text = _QUERY_PAIR.sub(_query_pair, text)
    text = _AUTHORIZATION.sub(_authorization, text)
    return _BEARER.sub(lambda match: f"{match['scheme']} {REDACTED}", text)


def _query_pair(match: re.Match[str]) -> str:
    if unquote_plus(match["name"]).strip().lower() in SECRET_PARAMETERS:
        return f"{match['lead']}{match['name']}={REDACTED}"
    return match.group(0)


def _authorization(match: re.Match[str]) -> str:
    scheme, _, credentials = match["value"].strip().partition(" ")
    kept = f"{scheme} " if credentials else ""
    return f"{match['lead']}{kept}{REDACTED}"


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with :func:`redact` (arguments merged first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def install_redaction() -> None:
    """Put the filter on every handler of LOGGERS (idempotent; call after logging setup)."""
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
