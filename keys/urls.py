from django.urls import path

from keys import account_views, passkey_views, views

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
    path("mijn-sleutels/wachtwoord/", account_views.change_password_view, name="change-password"),
    path("mijn-sleutels/gsm-nummer/", account_views.change_phone_view, name="change-phone"),
    path(
        "mijn-sleutels/gsm-nummer/code/",
        account_views.change_phone_verify_view,
        name="change-phone-verify",
    ),
]

# Passkeys and recovery codes (issue 13): what the key-module interface does not cover.
urlpatterns += [
    path(
        "aanmelden/passkey/opties/",
        passkey_views.signin_passkey_options_view,
        name="signin-passkey-options",
    ),
    path("aanmelden/passkey/", passkey_views.signin_passkey_view, name="signin-passkey"),
    path("aanmelden/herstelcode/", passkey_views.signin_recovery_view, name="signin-recovery"),
    path(
        "mijn-sleutels/<int:key_id>/passkey-alleen/",
        passkey_views.passkey_usernameless_view,
        name="passkey-usernameless",
    ),
    path("mijn-sleutels/herstelcodes/", passkey_views.recovery_codes_view, name="recovery-codes"),
    path(
        "activatie-herstelcodes/",
        passkey_views.wizard_recovery_codes_view,
        name="wizard-recovery-codes",
    ),
]
