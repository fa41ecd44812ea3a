"""The orders app's models, by product: ``orders.spot.models`` and ``orders.options.models``
(one Django app, so one migration history)."""

from .options.models import *  # noqa: F403
from .options.models import __all__ as _options
from .spot.models import *  # noqa: F403
from .spot.models import __all__ as _spot

__all__ = [*_options, *_spot]
