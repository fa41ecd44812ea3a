import pytest

from tests.accounts.helpers import PLAIN_STATIC_STORAGE


@pytest.fixture(autouse=True)
def _static_without_manifest(settings):
    """Admin pages link static files; without ``collectstatic`` the manifest storage fails."""
    settings.STORAGES = {**settings.STORAGES, "staticfiles": PLAIN_STATIC_STORAGE}


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Uploaded KYC documents go to a per-test directory."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
