"""Pages render times in the signed-in trader's zone (UTC for everyone else)."""

from __future__ import annotations

from django.utils import timezone

from .preferences import zone_for

# the API and the staff console (whose reports say UTC) keep UTC whatever the person's setting
UTC_PATHS = ("/api/", "/admin/")


class DisplayTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if request.path.startswith(UTC_PATHS) or user is None or not user.is_authenticated:
            return self.get_response(request)  # the API answers in UTC, and so do signed-out pages
        zone = user.time_zone
        timezone.activate(zone_for(zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
