"""Request bodies and URLs as the API accepts them: bounded, and free of control characters.

* JSON bodies are at most ``API_MAX_BODY_BYTES`` and nest at most ``API_MAX_JSON_DEPTH``
  deep (a body of 100,000 ``[`` would otherwise exhaust Python's recursion limit);
  ``NaN`` and ``Infinity`` are not JSON.
* No string of a body, form, path or query may hold a control character (NUL first of all:
  PostgreSQL cannot store it) or a lone surrogate (it cannot be encoded at all). Refused
  where they enter, so no service ever sees one.
* Every refusal is a 400 in the API's error shape, including the parser errors of
  multipart and form bodies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from django.conf import settings
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from trading.errors import ValidationFailed, error_body

# C0 and C1 controls and DEL (tab, newline and carriage return are text), and surrogates.
_BODY_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# In a URL even tab and newline are refused.
_URL_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _refuse(field: str, why: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {why}", fields={field: [why]})


def check_text(value: str, field: str, *, url: bool = False) -> str:
    if (_URL_FORBIDDEN if url else _BODY_FORBIDDEN).search(value):
        raise _refuse(field, "Control characters (such as NUL) are not allowed.")
    return value


def _walk(data, max_depth: int) -> None:
    """Every key and string of a parsed body, checked without recursion."""
    stack: list[tuple[object, str, int]] = [(data, "body", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > max_depth:
                raise ValidationFailed(
                    f"The JSON body nests deeper than {max_depth} levels.",
                    fields={"body": [f"At most {max_depth} levels of nesting."]},
                )
            items: Iterator = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                name = check_text(key, path) if isinstance(key, str) else str(key)
                stack.append((item, name if path == "body" else f"{path}.{name}", depth + 1))
        elif isinstance(value, str):
            check_text(value, path)


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the limits above."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ValidationFailed(
                f"The request body is larger than {limit} bytes.", fields={"body": [f"At most {limit} bytes."]}
            )
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        depth = settings.API_MAX_JSON_DEPTH
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_no_constants)
        except RecursionError:
            raise ValidationFailed(
                f"The JSON body nests deeper than {depth} levels.",
                fields={"body": [f"At most {depth} levels of nesting."]},
            ) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        _walk(data, depth)
        return data


def _check_form(result):
    data = result.data if isinstance(result, parsers.DataAndFiles) else result
    for key, values in data.lists():
        check_text(key, "body")
        for value in values:
            if isinstance(value, str):
                check_text(value, key)
    if isinstance(result, parsers.DataAndFiles):
        for key, upload in result.files.items():
            check_text(key, "body")
            check_text(upload.name or "", key)
    return result


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _check_form(super().parse(stream, media_type, parser_context))


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _check_form(super().parse(stream, media_type, parser_context))


class RefuseControlCharactersMiddleware:
    """Paths and query strings with control characters are refused before any view (or
    URL converter) sees them; under /api/ in the API's error shape. Also answers the
    multipart errors Django raises when something reads ``request.POST`` early."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            check_text(request.path, "path", url=True)
            for key, values in request.GET.lists():
                check_text(key, "query", url=True)
                for value in values:
                    check_text(value, key, url=True)
        except ValidationFailed as exc:
            return _error_response(request, exc.code, exc.message, exc.fields)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, MultiPartParserError):
            return _error_response(request, "parse_error", f"Multipart form parse error - {exception}", {})
        return None


def _error_response(request, code: str, message: str, fields: dict):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(code, message, fields), status=400)
    from django.shortcuts import render

    return render(request, "400.html", status=400)
