"""The operators' admin: tasks with their timeline pages, the approvals inbox, read-only logs.

Every write here is a thin interface over a service: decisions go through
`tasks_app.services.approvals.approval_decide` (which checks the permission again, applies one
decision once and enqueues the task), operator actions through `tasks_app.services.control`.
The admin never writes a task, an approval, an event or a checkpoint row itself; what its pages
read beyond Django's own changelists comes from tasks_app/selectors/. Importing this package
registers every page (Django's admin autodiscovery imports it).
"""

from django.contrib import admin

from tasks_app.admin import api, approvals, history, operations, tasks

# The index lists the reports (outcomes, stuck, branches) above the models.
admin.site.index_template = "admin/horizon_index.html"

__all__ = ["api", "approvals", "history", "operations", "tasks"]
