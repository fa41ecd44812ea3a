"""The settlement app's routes, mounted by trading/urls.py under /api/v1/ and /."""

api_v1: list = []
web: list = []
