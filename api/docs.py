"""The API's interactive docs, served by the API itself: ``/docs`` (Swagger UI) works with no
internet access.

FastAPI's own page loads Swagger UI from a CDN, so on a lab machine without internet (or behind a
proxy) ``/docs`` stays blank. Here the same page (FastAPI's ``get_swagger_ui_html``) points at the
Swagger UI JavaScript and CSS that the pinned ``fastapi-offline`` package ships (swagger-ui-dist
5.32.6; see pyproject.toml), served under :data:`ASSETS_URL`.

There is no ``/redoc``: ReDoc 2 always fetches its sidebar logo from cdn.redoc.ly, so it cannot
run without the internet (nor without telling a third party that someone opened the docs).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: The Swagger UI bundle and its CSS: the static files of the ``fastapi-offline`` package.
ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
#: Where the app serves them.
ASSETS_URL = "/docs/assets"
DOCS_URL = "/docs"


def add_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its OAuth2 redirect page from local assets, neither in the schema.

    ``app`` must be built with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages off); call this
    before mounting anything at ``/``, which would otherwise shadow these paths.
    """
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("build the app with FastAPI(docs_url=None, redoc_url=None) to serve offline docs")
    if not app.openapi_url:
        return
    openapi_url = app.openapi_url
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui_html(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=root + oauth2_redirect_url if oauth2_redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    if oauth2_redirect_url:

        @app.get(oauth2_redirect_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()
