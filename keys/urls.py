from django.urls import path

from keys import views

app_name = "keys"

urlpatterns = [
    path("", views.home, name="home"),
    path("activeren/<str:token>/", views.activation_link, name="activation-link"),
]
