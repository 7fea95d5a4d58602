"""The JSON API, mounted at /api/ (django-ninja): a thin interface over tasks_app/services.

Modules: auth (bearer tokens and staff sessions), schemas (request and response shapes), routes
(one small function per endpoint, each calling one service), errors (our exceptions mapped to
JSON 4xx answers, once), limits (the body size cap, page caps, the creation rate limit), docs (the
interactive docs page, served from the assets inside the ninja package: no CDN).
"""

from tasks_app.api.main import api

__all__ = ["api"]
