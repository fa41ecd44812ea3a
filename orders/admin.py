"""The orders app's admin, by product (Django loads this module)."""

from .options import admin as options_admin  # noqa: F401
from .spot import admin as spot_admin  # noqa: F401
