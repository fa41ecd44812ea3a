"""A signed-in browser's requests keep its session's "last seen" current (at most one write a
minute per session, decided by the cache before any database work). A signed-in session not
recorded yet — its key was cycled (a password change keeps the browser signed in under a new
key), or it began before sessions were recorded — is recorded then."""

from __future__ import annotations

from django.core.cache import cache

from .models import UserSessionKind
from .safety_services import SEEN_EVERY, user_session_seen, user_session_start


class SessionSeenMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        key = getattr(session, "session_key", None) if session is not None else None
        if key and user is not None and user.is_authenticated:
            try:
                fresh = cache.add(f"session-seen:{key}", 1, timeout=int(SEEN_EVERY.total_seconds()))
            except Exception:  # the cache being away must not stop the page
                fresh = True
            if fresh and not user_session_seen(session_key=key, ip=request.META.get("REMOTE_ADDR")):
                user_session_start(user=user, request=request, kind=UserSessionKind.BROWSER, session_key=key)
        return self.get_response(request)
