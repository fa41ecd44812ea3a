import os

import pytest
from rest_framework.test import APIClient

from tests.factories import DEFAULT_PASSWORD, StaffFactory, UserFactory

PLAIN_STATIC_STORAGE = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
FAST_ARGON2 = "tests.factories.FastArgon2PasswordHasher"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """One test database per pytest run, so runs side by side (and CI) never share one."""
    from django.conf import settings

    suffix = os.environ.get("TEST_DB_SUFFIX") or str(os.getpid())
    for config in settings.DATABASES.values():
        if config["ENGINE"].endswith("postgresql"):
            config.setdefault("TEST", {})["NAME"] = f"test_{config['NAME']}_{suffix}"


@pytest.fixture(autouse=True)
def _static_without_manifest(settings):
    """With DEBUG=0 the static storage is whitenoise's manifest storage, which needs
    ``collectstatic``; in-process tests use plain storage (the browser tests' daphne server
    runs collectstatic and the real storage)."""
    settings.STORAGES = {**settings.STORAGES, "staticfiles": PLAIN_STATIC_STORAGE}


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Uploaded files (KYC documents) go to a per-test directory, not var/private."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Cheap Argon2 parameters keep the suite fast; `production_password_hashers` undoes it."""
    settings.PASSWORD_HASHERS = [FAST_ARGON2, *settings.PASSWORD_HASHERS]


@pytest.fixture
def production_password_hashers(settings):
    settings.PASSWORD_HASHERS = [h for h in settings.PASSWORD_HASHERS if h != FAST_ARGON2]
    return settings.PASSWORD_HASHERS


@pytest.fixture(autouse=True)
def _books_stay_clean(request):
    """After every test that touched the database: the ledger recomputes from its
    transfers and balances per asset, and the audit chain verifies. Whatever a test did
    through the platform's code must leave the books clean."""
    uses_db = request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(request.fixturenames)
    if not uses_db or request.node.get_closest_marker("tampers"):
        yield
        return
    request.getfixturevalue("db")  # tear down after this check, not before
    yield
    from ledger.selectors import ledger_recompute
    from trading.audit import audit_chain_verify

    report = ledger_recompute()
    assert report.ok, (
        f"ledger audit failed after the test: {report.mismatched} {report.negative} {report.unbalanced_assets}"
    )
    ok, _checked, broken, reason = audit_chain_verify()
    assert ok, f"audit chain broken at seq {broken} after the test: {reason}"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache (Redis in the suite), risk limits and trading
    states in a per-process cache, order rates in Redis or memory: start every test clean."""
    from django.core.cache import cache

    from risk import ratelimit, selectors

    cache.clear()
    selectors.cache_clear()
    ratelimit.reset()
    yield


@pytest.fixture(autouse=True)
def _dependencies_up():
    """Each test starts with PostgreSQL and Redis believed up: an outage one test provoked
    must not make this process drop the next test's publishes (``trading.dependencies``)."""
    from trading import dependencies

    dependencies._dependencies.clear()
    yield


@pytest.fixture
def eager_tasks():
    """Celery tasks run in the caller as soon as they are queued (after the commit that
    queues them), as the embedded mode runs them: the test is the worker."""
    from trading.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


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


@pytest.fixture
def admin_client_otp(staff, password):
    """A staff browser session signed in to the admin with password and a TOTP code."""
    from django.test import Client

    from tests.factories import enable_totp, totp_code

    device = enable_totp(staff)
    client = Client()
    response = client.post(
        "/admin/login/",
        {
            "username": staff.email,
            "password": password,
            "otp_device": device.persistent_id,
            "otp_token": totp_code(device),
            "next": "/admin/",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    client.user = staff
    return client


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Browser tests last: Playwright drives Chromium from an event loop in the main thread,
    which must not overlap the suite's own asyncio tests."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
