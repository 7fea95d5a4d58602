"""The NinjaAPI instance: authentication on every operation, the strict JSON parser, local docs."""

from __future__ import annotations

from typing import Any

from django.urls import path
from ninja import NinjaAPI

from tasks_app.api import errors
from tasks_app.api.auth import BearerToken, StaffSession
from tasks_app.api.docs import ASSET_URL_NAME, LocalSwagger, docs_asset
from tasks_app.api.limits import StrictJsonParser
from tasks_app.api.routes import router


class HorizonAPI(NinjaAPI):
    def _get_urls(self) -> list[Any]:
        # The docs page's assets, before ninja's own routes (no auth: they are public files).
        return [path("docs/assets/<str:name>", docs_asset, name=ASSET_URL_NAME), *super()._get_urls()]


api = HorizonAPI(
    title="Horizon API",
    version="1",
    description="Create goals for long-horizon agents, follow them, and answer them. Authenticate with "
    "`Authorization: Bearer <token>` (`manage.py create_api_token`).",
    urls_namespace="api",
    auth=[BearerToken(), StaffSession()],
    parser=StrictJsonParser(),
    docs=LocalSwagger(),
)
errors.install(api)
api.add_router("/", router)
