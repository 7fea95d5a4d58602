"""A read-mostly admin for tasks; the approvals inbox and timeline pages build on it."""

from django.contrib import admin

from tasks_app.models import AgentTask, Checkpoint, EndpointBreaker, Event, Step


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self.fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class StepInline(ReadOnlyInline):
    model = Step
    fields = ("index", "title", "status", "attempts", "started_at", "finished_at", "error")


class EventInline(ReadOnlyInline):
    model = Event
    fields = ("seq", "type", "schema_version", "payload", "worker", "created_at")
    ordering = ("seq",)


@admin.register(AgentTask)
class AgentTaskAdmin(admin.ModelAdmin):
    list_display = ("goal", "status", "profile", "steps_completed", "resume_count", "updated_at")
    list_filter = ("status", "profile")
    search_fields = ("goal", "id")
    inlines = (StepInline, EventInline)
    readonly_fields = [f.name for f in AgentTask._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # goals are created through the service (command, API), never as raw rows


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ("task", "seq", "event_seq", "created_at")
    readonly_fields = ("task", "seq", "event_seq", "state", "created_at")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(EndpointBreaker)
class EndpointBreakerAdmin(admin.ModelAdmin):
    """Circuit breakers of the LLM endpoints: what is open, since when, after how many failures."""

    list_display = ("key", "state", "failures", "opened_at", "updated_at")
    list_filter = ("state",)
    readonly_fields = ("key", "state", "failures", "opened_at", "trial_started_at", "updated_at")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
