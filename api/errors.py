"""Error answers: their models in OpenAPI, and 422 bodies that name the field without echoing
megabytes of input or anything that cannot be encoded.

Every 4xx of the API is either ``{"detail": "one line"}`` (:class:`ErrorOut`) or FastAPI's
validation shape ``{"detail": [{"loc", "msg", "type", "input"?}]}``; the validation handler here
keeps ``loc``/``msg``/``type``, shortens ``input`` to :data:`MAX_INPUT_CHARS` characters of its
JSON and lists at most :data:`MAX_ERRORS` errors.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

#: Characters of an error's ``input`` (as JSON) echoed back; longer inputs become a shortened string.
MAX_INPUT_CHARS = 200
#: Characters of one ``loc`` element or ``msg``.
MAX_TEXT_CHARS = 1000
#: Errors listed in one answer; the rest are counted in a last entry.
MAX_ERRORS = 20


class ErrorOut(BaseModel):
    """A refused request: one line saying why."""

    detail: str


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, invalid or revoked Bearer token",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body larger than PROXNS_MAX_BODY_BYTES",
    415: "Request body is not JSON",
    429: "Too many queued jobs (PROXNS_MAX_QUEUED_JOBS, PROXNS_MAX_QUEUED_JOBS_PER_USER)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the plain-detail errors a route gives (422 is added by FastAPI)."""
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in codes}


def clean_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` safe to encode as UTF-8 (lone surrogates escaped), at most ``limit`` characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_safe(value: Any) -> bool:
    """True when ``value`` encodes as strict JSON in UTF-8 (no NaN, no lone surrogates)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, (list, tuple)):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(k) and _json_safe(v) for k, v in value.items())
    return value is None or isinstance(value, (bool, int))


def short_input(value: Any) -> Any:
    """The input itself when small and strict-JSON; otherwise the start of its JSON text."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (ValueError, RecursionError):
        text = repr(value)
    if len(text) <= MAX_INPUT_CHARS and _json_safe(value):
        return value
    return clean_text(text, MAX_INPUT_CHARS)


def public_errors(errors: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Validation errors as answered: loc, msg, type and a short input; at most MAX_ERRORS."""
    out = []
    for err in list(errors)[:MAX_ERRORS]:
        loc = [
            x if isinstance(x, int) and not isinstance(x, bool) else clean_text(str(x), MAX_INPUT_CHARS)
            for x in err.get("loc", ())
        ]
        item = {
            "type": clean_text(str(err.get("type", "value_error")), 100),
            "loc": loc,
            "msg": clean_text(str(err.get("msg", ""))),
        }
        if "input" in err:
            item["input"] = short_input(err["input"])
        out.append(item)
    if len(errors) > MAX_ERRORS:
        out.append(
            {
                "type": "too_many_errors",
                "loc": [],
                "msg": f"{len(errors) - MAX_ERRORS} more errors not listed",
            }
        )
    return out


def validation_response(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": public_errors(errors)}, status_code=422)


async def validation_error_handler(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return validation_response(list(exc.errors()))
