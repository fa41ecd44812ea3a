"""The Portfolio page."""

urlpatterns: list = []
