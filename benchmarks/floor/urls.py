from django.urls import path

from benchmarks.floor import views

urlpatterns = [
    path("wizard/<str:kind>/", views.wizard, name="wizard"),
    path("done/", views.done, name="done"),
    path("login/", views.login_view, name="login"),
    path("login/code/", views.login_code_view, name="login-code"),
    path("home/", views.home, name="home"),
]
