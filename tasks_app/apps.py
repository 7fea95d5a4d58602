from django.apps import AppConfig


class TasksAppConfig(AppConfig):
    name = "tasks_app"
    verbose_name = "Horizon tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tasks_app.runtime import configure_audit_keys, configure_tools, load_tool_modules

        configure_tools()
        load_tool_modules()
        configure_audit_keys()
        from tasks_app import sandbox_check  # noqa: F401 - registers the start-up check
