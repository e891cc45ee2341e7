"""The web server: VTT Studio's Streamlit app (app.py) as an ASGI app with its own session route.

`make run` starts it (`streamlit run server.py`, which finds `app` below and serves it with
uvicorn). While it starts, before it takes a request, it prepares the database (migrations,
job recovery, the coordinator account, the demo on an empty database: `study.startup`), so the
first visitor does not wait for the demo. Besides Streamlit's own routes it has one:
`/_vtt/session`, where a browser that has just signed in trades its one-time claim ticket for
an HTTP-only session cookie (POST), and where sign-out deletes it (DELETE); see
`study.sessions`.

It also keeps two things of the server out of every browser: the path of the app's script on
the server (Streamlit sends it with each new session) and the repository's git details
(Streamlit answers a browser that asks for them). And it tells Streamlit that app.py lays out
the pages (st.navigation): Streamlit's older convention, a `pages/` folder beside the script,
would otherwise serve a file of `pages/` directly, and list every file of it, to the first
visitor after a start who opens an address like /results.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

import streamlit as st
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from streamlit.runtime.app_session import AppSession
from streamlit.runtime.pages_manager import PagesManager

from study import settings
from study.sessions import SESSION_COOKIE, claim_session, end_session
from study.startup import prepare

SESSION_ROUTE = "/_vtt/session"
# A claim ticket is 43 URL-safe characters; anything much longer is not one.
MAX_TICKET_BYTES = 256


@cache
def _engine(url: str) -> Engine:
    return prepare(url)


@asynccontextmanager
async def _prepared(_app: st.App) -> AsyncIterator[None]:
    await run_in_threadpool(_engine, settings.database_url())
    yield


def _same_origin(request: Request) -> bool:
    """The request comes from a page of this app (no other site can sign a browser in)."""
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    return origin is not None and host is not None and origin.split("://", 1)[-1] == host


def _cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def session_route(request: Request) -> Response:
    engine = _engine(settings.database_url())
    if request.method == "DELETE":
        end_session(engine, token=request.cookies.get(SESSION_COOKIE))
        response = Response(status_code=204)
        _cookie(response, request, "", 0)
        return response
    body = await request.body()
    if not _same_origin(request) or len(body) > MAX_TICKET_BYTES:
        return Response(status_code=403)
    claimed = claim_session(engine, body.decode("ascii", errors="replace").strip())
    if claimed is None:
        return Response(status_code=403)
    response = Response(status_code=204)
    _cookie(response, request, claimed.token, claimed.max_age_s)
    return response


def _without_server_details() -> None:
    """Patch Streamlit's sessions so that no browser learns the server's paths or git state."""
    create = AppSession._create_new_session_message

    def new_session_message(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        message = create(self, *args, **kwargs)
        message.new_session.main_script_path = ""
        return message

    AppSession._create_new_session_message = new_session_message  # type: ignore[method-assign]
    AppSession._handle_git_information_request = lambda self: None  # type: ignore[method-assign]


_without_server_details()
PagesManager.uses_pages_directory = False
app = st.App(
    "app.py",
    routes=[Route(SESSION_ROUTE, session_route, methods=["POST", "DELETE"])],
    lifespan=_prepared,
)
