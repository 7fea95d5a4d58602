"""Admin pages of the JSON API's tables: API tokens (created here, raw token shown once) and webhook deliveries."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from tasks_app.admin.common import ModelAdmin, ModelForm
from tasks_app.models import ApiToken, WebhookDelivery
from tasks_app.services.api_tokens import api_token_create


class ApiTokenForm(ModelForm):
    class Meta:
        model = ApiToken
        fields = ("user", "name", "revoked_at")


@admin.register(ApiToken)
class ApiTokenAdmin(ModelAdmin):
    form = ApiTokenForm
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # A new token needs only its user and name; revoking is an edit of an existing one.
        return ["user", "name"] if obj is None else ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else ["user", "prefix", "created_at", "last_used_at"]

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # Created through the service, which makes the secret; the raw token exists only in this message.
        token, raw = api_token_create(user=obj.user, name=obj.name)
        obj.pk, obj.prefix, obj.digest, obj.created_at = token.pk, token.prefix, token.digest, token.created_at
        obj._state.adding = False
        messages.warning(request, f"The new API token (copy it now: it is not stored and will not be shown again): {raw}")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ModelAdmin):
    list_display = ("task", "task_status", "url", "status", "attempts", "last_status_code", "next_attempt_at", "created_at")
    list_filter = ("status", "task_status")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
