"""Seed 000's settings, as much as the release image needs: static files
collected into /src/static at build time, no database until the
entrypoint's migrate (which needs the compose file's PostgreSQL)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "only-for-local-runs")
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
INSTALLED_APPS = ["django.contrib.staticfiles"]
ROOT_URLCONF = "config.urls"
DATABASES = {}
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "frontend"]
