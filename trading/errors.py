"""Domain errors and the one mapping from any error to the API.md error format.

``{"error": {"code": "<machine_code>", "message": "...", "fields": {...}}}``
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import render
from redis.exceptions import RedisError
from rest_framework import exceptions as drf
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A business rule refused the request. Services raise these; views never build errors."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict | None = None,
        status: int | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.fields = fields or {}
        self.headers = headers or {}


class ValidationFailed(DomainError):
    code = "validation_error"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"


class OtpRequired(DomainError):
    status = 401
    code = "otp_required"


def show_on_form(form, exc: DomainError, rename: dict | None = None) -> None:
    """Show a service's refusal on a Django form: on each field it names (``rename`` maps a
    service's field name to the form's), else as the form's own error."""
    placed = False
    for field, problems in (exc.fields or {}).items():
        field = (rename or {}).get(field, field)
        if field in form.fields:
            for problem in problems if isinstance(problems, list) else [problems]:
                form.add_error(field, str(problem))
            placed = True
    if not placed:
        form.add_error(None, exc.message)


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail) -> dict:
    """DRF validation detail -> {"field": ["message", ...]} with plain strings."""
    if isinstance(detail, dict):
        return {key: _messages(value) for key, value in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value) -> list | dict:
    if isinstance(value, dict):
        return {key: _messages(item) for key, item in value.items()}
    if isinstance(value, list):
        flat: list = []
        for item in value:
            flat.extend(
                _messages(item)
                if isinstance(item, list)
                else [_messages(item) if isinstance(item, dict) else str(item)]
            )
        return flat
    return [str(value)]


_DRF_CODES = {
    drf.NotAuthenticated: ("not_authenticated", "Authentication credentials were not provided."),
    drf.AuthenticationFailed: ("authentication_failed", None),
    drf.PermissionDenied: ("permission_denied", None),
    drf.NotFound: ("not_found", "Not found."),
    drf.MethodNotAllowed: ("method_not_allowed", None),
    drf.NotAcceptable: ("not_acceptable", None),
    drf.UnsupportedMediaType: ("unsupported_media_type", None),
    drf.ParseError: ("parse_error", None),
    drf.Throttled: ("rate_limited", None),
}


def api_exception_handler(exc, context):
    """REST_FRAMEWORK['EXCEPTION_HANDLER']: every API error leaves in one shape."""
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status, headers=exc.headers or None)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(error_body("validation_error", "Invalid input.", fields), status=400)
    if isinstance(exc, RedisError):
        # Redis (cache, channel layer, the engines' book snapshots) is away: a refusal the
        # client can retry, not a fault. The processes that write there ride it out.
        logger.warning("API request refused while Redis is unavailable: %s: %s", type(exc).__name__, exc)
        return Response(
            error_body("service_unavailable", "A platform service is briefly unavailable; try again shortly."),
            status=503,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf.PermissionDenied()

    # imported here: rest_framework.views loads the parser classes (trading.parsers), which
    # need this module's errors
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500

    if isinstance(exc, drf.ValidationError):
        body = error_body("validation_error", "Invalid input.", _flatten(exc.detail))
    else:
        code, message = "error", None
        for klass, (klass_code, klass_message) in _DRF_CODES.items():
            if isinstance(exc, klass):
                code, message = klass_code, klass_message
                break
        if isinstance(exc, drf.AuthenticationFailed):
            detail = exc.detail if isinstance(exc.detail, dict) else {}
            if detail.get("code") in {"token_not_valid", "user_not_found", "user_inactive"}:
                code = "token_invalid"
        body = error_body(code, message or _detail_text(exc.detail))
    response.data = body
    return response


def _detail_text(detail) -> str:
    if isinstance(detail, dict):
        return str(detail.get("detail", "") or next(iter(detail.values()), ""))
    if isinstance(detail, list):
        return " ".join(str(item) for item in detail)
    return str(detail)


def lockout_response(request, credentials=None, *args, **kwargs):
    """AXES_LOCKOUT_CALLABLE: too many failed logins for this email from this address."""
    message = "Too many failed login attempts. Try again later."
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("rate_limited", message), status=429)
    return render(request, "accounts/locked_out.html", {"message": message}, status=429)


def json_not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return render(request, "404.html", status=404)


def json_server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("internal_error", "Internal server error."), status=500)
    return render(request, "500.html", status=500)


def json_bad_request(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    return render(request, "400.html", status=400)


def json_permission_denied(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("permission_denied", "Permission denied."), status=403)
    return render(request, "403.html", status=403)


def csrf_failure(request, reason=""):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("csrf_failed", f"CSRF check failed: {reason}"), status=403)
    return render(request, "403.html", {"reason": reason}, status=403)
