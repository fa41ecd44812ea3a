"""Risk tests trade through the real entry paths: the spot pairs and option series listed at
a fresh index, funded traders."""

from tests.orders.conftest import btc_call, listed  # noqa: F401  (fixtures)
from tests.orders.spot.conftest import alice, bob, btc_engine, markets  # noqa: F401  (fixtures)
