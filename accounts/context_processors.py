from .preferences import DEFAULT_TIME_ZONE


def display(request):
    """The theme and time zone every page is drawn with (``<html data-theme data-timezone>``)."""
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    return {
        "THEME": (user.theme if signed_in else "") or "dark",
        "DISPLAY_TIME_ZONE": (user.time_zone if signed_in else "") or DEFAULT_TIME_ZONE,
    }
