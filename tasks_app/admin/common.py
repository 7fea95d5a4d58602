"""Base classes for pages of rows only the runtime writes: viewable, never added, changed or deleted here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.forms import ModelForm as DjangoModelForm

# django-stubs makes these generic; Django's classes cannot be subscripted at run time.
if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
    TabularInline = admin.TabularInline[Any, Any]
    ModelForm = DjangoModelForm[Any]
else:
    ModelAdmin = admin.ModelAdmin
    TabularInline = admin.TabularInline
    ModelForm = DjangoModelForm


class ReadOnlyInline(TabularInline):
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self.fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class ReadOnlyAdmin(ModelAdmin):
    """Rows written only by the runtime: viewable, never added, changed or deleted here."""

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
