from django.contrib import admin
from django.urls import path

from horizon_project.health import healthz
from tasks_app import reports
from tasks_app.api import api
from tasks_app.observability.views import metrics_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    # Before admin/: the admin's catch-all would answer these paths with a 404.
    path("admin/reports/outcomes/", admin.site.admin_view(reports.outcomes_page), name="report_outcomes"),
    path("admin/reports/stuck/", admin.site.admin_view(reports.stuck_page), name="report_stuck"),
    path("admin/reports/branches/", admin.site.admin_view(reports.branches_page), name="report_branches"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]
