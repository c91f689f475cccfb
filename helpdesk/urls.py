"""Under /admin/helpdesk/: staff only (``admin_view``: the admin's login, ``never_cache``,
CSRF), each view checks its permission."""

from django.contrib import admin
from django.urls import path

from helpdesk import views

app_name = "helpdesk"

staff = admin.site.admin_view

urlpatterns = [
    path("citizens/<int:pk>/", staff(views.citizen_view), name="citizen"),
    path("citizens/<int:pk>/activity.csv", staff(views.timeline_csv), name="citizen-csv"),
    path(
        "citizens/<int:pk>/activations/<int:activation_id>/resend/",
        staff(views.resend_view),
        name="resend",
    ),
    path(
        "citizens/<int:pk>/activations/<int:activation_id>/revoke/",
        staff(views.revoke_view),
        name="revoke",
    ),
    path("citizens/<int:pk>/keys/<int:key_id>/block/", staff(views.block_key_view), name="block"),
    path("citizens/<int:pk>/unlock/", staff(views.unlock_view), name="unlock"),
    path("funnel/", staff(views.funnel_view), name="funnel"),
    path("funnel.csv", staff(views.funnel_csv), name="funnel-csv"),
]
