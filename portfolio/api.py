"""Portfolio API: valuation, open lots and realized PnL."""

urlpatterns: list = []
