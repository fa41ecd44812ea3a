"""Small helpers every app's API views share."""

from __future__ import annotations


def validated(serializer_class, request, **kwargs) -> dict:
    """Validate ``request.data`` with ``serializer_class``; bad input raises a 400 validation_error."""
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
