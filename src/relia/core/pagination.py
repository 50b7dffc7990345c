"""Opaque cursors for keyset pagination: the cursor is the sort key of the last item returned."""

from __future__ import annotations

import base64
import json
from typing import Any

from relia.core.errors import BadRequest, FieldError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(key: Any) -> str:
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(
            "The cursor is not one this server issued.",
            errors=[FieldError("query.cursor", "malformed cursor")],
        ) from exc
