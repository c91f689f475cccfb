"""The provider is off in production unless turned on, and then only with a key of its own."""

from oidc.keyconfig import generate_pem
from tests.test_settings import PRODUCTION, SHARED_CACHE, run_manage

SHOW = (
    "from django.conf import settings; from django.urls import resolve, Resolver404\n"
    "try:\n    resolve('/.well-known/openid-configuration'); found = True\n"
    "except Resolver404:\n    found = False\n"
    "print(settings.OIDC_PROVIDER_ENABLED, found)"
)


def test_off_by_default_in_production():
    result = run_manage("shell", "--no-imports", "-c", SHOW, **PRODUCTION)
    assert result.stdout.strip() == "False False", result.stderr


def test_on_without_a_key_refuses_to_start_and_never_makes_one(tmp_path):
    result = run_manage("check", **PRODUCTION, OIDC_PROVIDER_ENABLED="true")
    assert result.returncode != 0
    assert "OIDC_RSA_PRIVATE_KEY" in result.stderr


ISSUER_AND_PAIRWISE = {
    "OIDC_ISSUER": "https://sleutels.example.be",
    "OIDC_PAIRWISE_SECRET": "p" * 20 + "-pairwise-secret-0123456789",
}


def test_on_without_an_issuer_or_a_pairwise_secret_refuses_to_start(tmp_path):
    """Without OIDC_ISSUER the issuer would be each request's Host header; without
    OIDC_PAIRWISE_SECRET every `sub` would change with SECRET_KEY."""
    key = tmp_path / "oidc.pem"
    key.write_text(generate_pem())
    env = {**PRODUCTION, "OIDC_PROVIDER_ENABLED": "true", "OIDC_RSA_PRIVATE_KEY_FILE": str(key)}
    for missing, bad in (
        ("OIDC_ISSUER", ""),
        ("OIDC_ISSUER", "http://sleutels.example.be"),
        ("OIDC_ISSUER", "https://sleutels.example.be/?x=1"),
        ("OIDC_PAIRWISE_SECRET", ""),
        ("OIDC_PAIRWISE_SECRET", "short"),
    ):
        result = run_manage("check", **env, **{**ISSUER_AND_PAIRWISE, missing: bad})
        assert result.returncode != 0, (missing, bad)
        assert missing in result.stderr and "ImproperlyConfigured" in result.stderr
    # a build step without secrets still runs
    result = run_manage("makemigrations", "--check", "--dry-run", **env)
    assert "OIDC_ISSUER" not in result.stderr, result.stderr


def test_on_with_a_key_file_passes_check_deploy(tmp_path):
    key = tmp_path / "oidc.pem"
    key.write_text(generate_pem())
    env = {
        **PRODUCTION,
        **ISSUER_AND_PAIRWISE,
        "OIDC_PROVIDER_ENABLED": "true",
        "OIDC_RSA_PRIVATE_KEY_FILE": str(key),
    }
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **env, **SHARED_CACHE)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_manage("shell", "--no-imports", "-c", SHOW, **env)
    assert result.stdout.strip() == "True True", result.stderr


LOADED = (
    "import sys\n"
    "from django.core.handlers.wsgi import WSGIHandler\n"
    "from django.template.loader import get_template\n"
    "from django.urls import get_resolver\n"
    "WSGIHandler(); get_resolver().url_patterns; get_template('keys/account/my_keys.html')\n"
    "heavy = ['oidc.views', 'oidc.validators', 'oauth2_provider.oauth2_validators',"
    " 'oauth2_provider.views']\n"
    "print(sorted(name for name in heavy if name in sys.modules))"
)


def test_off_the_provider_s_views_and_validator_are_never_loaded():
    """Each worker's memory (issue 10 counts peak RSS per worker): with the provider off, the
    middleware and "Mijn digitale sleutels" use only the models, never the provider's views or
    django-oauth-toolkit's validator (about 6.5 MB a worker)."""
    result = run_manage("shell", "--no-imports", "-c", LOADED, **PRODUCTION)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_on_they_are(tmp_path):
    key = tmp_path / "oidc.pem"
    key.write_text(generate_pem())
    env = {
        **PRODUCTION,
        **ISSUER_AND_PAIRWISE,
        "OIDC_PROVIDER_ENABLED": "true",
        "OIDC_RSA_PRIVATE_KEY_FILE": str(key),
    }
    result = run_manage("shell", "--no-imports", "-c", LOADED, **env)
    assert "oidc.views" in result.stdout, result.stdout + result.stderr
