import os

import pytest
from rest_framework.test import APIClient

from tests.factories import DEFAULT_PASSWORD, StaffFactory, UserFactory


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """One test database per pytest run, so runs side by side (and CI) never share one."""
    from django.conf import settings

    suffix = os.environ.get("TEST_DB_SUFFIX") or str(os.getpid())
    for config in settings.DATABASES.values():
        if config["ENGINE"].endswith("postgresql"):
            config.setdefault("TEST", {})["NAME"] = f"test_{config['NAME']}_{suffix}"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache (Redis in the suite): start every test clean."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def password():
    return DEFAULT_PASSWORD


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def auth_api(user):
    client = APIClient()
    client.force_authenticate(user)
    client.user = user
    return client
