from django.urls import path

from keys import views

app_name = "keys"

wizard = views.ActivationWizard.as_view(url_name="keys:wizard-step", done_step_name="done")

urlpatterns = [
    path("", views.home, name="home"),
    path("activeren/<str:token>/", views.activation_link, name="activation-link"),
    path("activatie/<str:step>/", wizard, name="wizard-step"),
    path("afgemeld/", views.done, name="done"),
    path("gebruikersvoorwaarden/", views.terms, name="terms"),
]
