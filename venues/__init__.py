"""Outside venues behind one adapter interface (``venues.base``): a simulated venue
(``venues.simulated``) and a ccxt adapter for real exchanges (``venues.ccxt_venue``), built
from settings by ``venues.config``. Smart routing and the aggregated book use the order book
and IOC limit orders; settlement step 3 uses market orders; both look orders up by their
client order id."""
