from django.contrib import admin
from django.urls import path

from horizon_project.health import healthz
from tasks_app.api import api

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]
