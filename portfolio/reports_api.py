"""Portfolio API: performance, statements and transaction exports."""

urlpatterns: list = []
