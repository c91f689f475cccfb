"""The registered services in the admin (django-oauth-toolkit's own models stay listed too)."""

from django.contrib import admin

from oidc.models import Consent, Service


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "client_id", "redirect_uris", "min_level", "allow_nrn", "sector"]
    list_filter = ["min_level", "allow_nrn"]
    search_fields = ["application__name", "application__client_id", "sector"]
    list_select_related = ["application"]
    readonly_fields = ["application", "created_at"]

    @admin.display(description="client id")
    def client_id(self, obj: Service) -> str:
        return obj.application.client_id

    @admin.display(description="redirect URIs")
    def redirect_uris(self, obj: Service) -> str:
        return obj.application.redirect_uris

    def has_add_permission(self, request) -> bool:
        return False  # manage.py register_service: the secret is shown once, on the console


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ["service", "user", "scopes", "granted_at", "last_used_at"]
    list_select_related = ["service__application", "user"]
    readonly_fields = ["user", "service", "scopes", "granted_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        return False
