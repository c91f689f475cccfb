"""WSGI entry point, used by gunicorn in production (``gunicorn csam_activation.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csam_activation.settings")

application = get_wsgi_application()
