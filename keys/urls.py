from django.urls import path

from keys import account_views, recovery_views, views
from keys.digital_keys import KINDS

app_name = "keys"

wizard = views.ActivationWizard.as_view(url_name="keys:wizard-step", done_step_name="done")

urlpatterns = [
    path("", views.home, name="home"),
    path("activeren/<str:token>/", views.activation_link, name="activation-link"),
    path("activatie/<str:step>/", wizard, name="wizard-step"),
    path("afgemeld/", views.done, name="done"),
    path("gebruikersvoorwaarden/", views.terms, name="terms"),
]

urlpatterns += [
    path("aanmelden/", account_views.signin_view, name="signin"),
    path("aanmelden/sleutel/", account_views.signin_key_view, name="signin-key"),
    path("aanmelden/code/", account_views.signin_code_view, name="signin-code"),
    path("wachtwoord-vergeten/", account_views.forgot_password_view, name="forgot-password"),
    path("afmelden/", account_views.signout_view, name="signout"),
    path("afmelden/overal/", account_views.signout_everywhere_view, name="signout-everywhere"),
    path("mijn-sleutels/", account_views.my_keys_view, name="my-keys"),
    path("mijn-sleutels/toevoegen/", account_views.add_key_view, name="add-key"),
    path("mijn-sleutels/toevoegen/code/", account_views.add_key_verify_view, name="add-key-verify"),
    path(
        "mijn-sleutels/<int:key_id>/verwijderen/", account_views.remove_key_view, name="remove-key"
    ),
    path("mijn-sleutels/<int:key_id>/annuleren/", account_views.cancel_key_view, name="cancel-key"),
    path("mijn-sleutels/wachtwoord/", account_views.change_password_view, name="change-password"),
    path("mijn-sleutels/gsm-nummer/", account_views.change_phone_view, name="change-phone"),
    path(
        "mijn-sleutels/gsm-nummer/code/",
        account_views.change_phone_verify_view,
        name="change-phone-verify",
    ),
]

# Recovery codes (issue 13).
urlpatterns += [
    path("aanmelden/herstelcode/", recovery_views.signin_recovery_view, name="signin-recovery"),
    path("mijn-sleutels/herstelcodes/", recovery_views.recovery_codes_view, name="recovery-codes"),
    path(
        "activatie-herstelcodes/",
        recovery_views.wizard_recovery_codes_view,
        name="wizard-recovery-codes",
    ),
]

# The pages of kinds of key that have pages of their own (``KeyKind.urlpatterns``).
urlpatterns += [pattern for kind in KINDS.values() for pattern in kind.urlpatterns()]
