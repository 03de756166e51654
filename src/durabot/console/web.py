"""The operator console's pages: login with a session cookie and CSRF tokens, the cases, their review and exports."""

from __future__ import annotations

import csv
import io
import json
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import structlog
from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from durabot.clock import Clock, utc_now
from durabot.console.accounts import Accounts, Operator
from durabot.console.cases import REVIEW_STATUSES, CaseBook
from durabot.domain.cases import CaseStatus
from durabot.storage.availability import describe, is_unavailable

log = structlog.get_logger("durabot.console")

HERE = Path(__file__).parent
SESSION_COOKIE = "durabot_session"
LOGIN_COOKIE = "durabot_login"
"""The login form's own CSRF token (double submit), before there is a session."""

LOGIN_FAILURES_ALLOWED = 5
LOGIN_WINDOW_SECONDS = 300.0
"""At most this many failed logins per client address in this long; then 429 until the oldest ages out."""

OPERATOR_KEY = web.RequestKey("operator", Operator)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LoginThrottle:
    """Counts failed logins per client address in a sliding window."""

    def __init__(self, allowed: int = LOGIN_FAILURES_ALLOWED, window: float = LOGIN_WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._allowed, self._window, self._clock = allowed, window, clock
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, client: str) -> bool:
        """Whether ``client`` has used up its failures for now."""
        failures = self._failures.get(client)
        if not failures:
            return False
        while failures and failures[0] <= self._clock() - self._window:
            failures.popleft()
        return len(failures) >= self._allowed

    def failed(self, client: str) -> None:
        self._failures.setdefault(client, deque()).append(self._clock())


class ConsoleSection(Protocol):
    """A part of the console with routes of its own (health, equipment, conversations…), behind the same login."""

    def install(self, app: web.Application, pages: ConsolePages) -> None:
        """Add its routes to ``app``; render with ``pages.page``, audit with ``pages.audit``.

        Every route it adds needs a logged-in operator (``request[OPERATOR_KEY]``), and every POST
        carries the session's CSRF token in a ``csrf`` form field (``operator.csrf_token`` in templates).
        """


class ConsolePages:
    """The console's routes, over ``accounts`` and ``cases``."""

    def __init__(
        self,
        accounts: Accounts,
        cases: CaseBook,
        clock: Clock = utc_now,
        throttle: LoginThrottle | None = None,
        sections: Sequence[ConsoleSection] = (),
    ) -> None:
        self._accounts = accounts
        self._sections = tuple(sections)
        self._cases = cases
        self._clock = clock
        self._throttle = throttle or LoginThrottle()
        self._templates = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]), trim_blocks=True
        )

    def install(self, app: web.Application) -> None:
        """Add the console's routes, its login and CSRF checks, and its sections' routes to ``app``."""
        app.middlewares.append(self._guard)
        for section in self._sections:
            section.install(app, self)
        case = "{case_id:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}}"
        app.router.add_get("/", self._home)
        app.router.add_get("/login", self._login_page)
        app.router.add_post("/login", self._log_in)
        app.router.add_post("/logout", self._log_out)
        app.router.add_get("/cases", self._case_list)
        app.router.add_get("/cases.csv", self._cases_csv)
        app.router.add_get(f"/cases/{case}", self._case_page)
        app.router.add_get(f"/cases/{case}.json", self._case_json)
        app.router.add_get(f"/cases/{case}/print", self._case_print)
        app.router.add_post(f"/cases/{case}/review", self._set_review)
        app.router.add_static("/static", HERE / "static")

    # -- login, sessions and CSRF ------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Pages need a session (else: to the login page); every POST of a session carries its CSRF token."""
        path = request.path
        if path == "/favicon.ico":
            raise web.HTTPNotFound()  # asked for by browsers on their own: never a reason to send anyone to the login
        if path in ("/healthz", "/readyz", "/metrics") or path.startswith("/static/") or path == "/login":
            response = await handler(request)
        else:
            token = request.cookies.get(SESSION_COOKIE, "")
            try:
                operator = await self._accounts.session(token, self._clock()) if token else None
            except Exception as error:
                if not is_unavailable(error):
                    raise
                log.warning("console.database_unavailable", error=describe(error))
                raise web.HTTPServiceUnavailable(text="The database cannot be reached right now; the console needs it. Try again shortly.") from None
            if operator is None:
                if request.method == "POST":
                    raise web.HTTPForbidden(text="Your session has ended: log in again.")
                raise web.HTTPFound(f"/login?next={path}")
            if request.method == "POST":
                form = await request.post()
                if not secrets.compare_digest(str(form.get("csrf", "")), operator.csrf_token):
                    log.warning("console.csrf_refused", operator=operator.name, path=path)
                    raise web.HTTPForbidden(text="This form is out of date or did not come from the console: reload the page.")
            request[OPERATOR_KEY] = operator
            response = await handler(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _home(self, _request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/cases")

    async def _login_page(self, request: web.Request, error: str = "", name: str = "", status: int = 200) -> web.Response:
        csrf = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)  # another tab's login form stays valid
        page = self._render("login.html", None, csrf=csrf, error=error, name=name, next=_local(request.query.get("next", "/cases")))
        response = web.Response(text=page, content_type="text/html", status=status)
        response.set_cookie(LOGIN_COOKIE, csrf, httponly=True, samesite="Strict", secure=_secure(request), path="/login")
        return response

    async def _log_in(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        client = request.remote or "unknown"
        if not secrets.compare_digest(str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "") or "-"):
            raise web.HTTPForbidden(text="This login form is out of date: reload the page.")
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        if self._throttle.blocked(client):
            log.warning("console.login_throttled", client=client)
            return await self._login_page(request, "Too many failed attempts: wait a few minutes.", name, status=429)
        token = await self._accounts.log_in(name, password, self._clock())
        if token is None:
            self._throttle.failed(client)
            log.warning("console.login_failed", client=client)
            return await self._login_page(request, "That name and password do not match.", name, status=401)
        response = web.HTTPFound(_local(str(form.get("next", "/cases"))))
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", secure=_secure(request), path="/")
        response.del_cookie(LOGIN_COOKIE, path="/login")
        raise response

    async def _log_out(self, request: web.Request) -> web.StreamResponse:
        await self._accounts.log_out(request.cookies.get(SESSION_COOKIE, ""), request[OPERATOR_KEY], self._clock())
        response = web.HTTPFound("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    # -- cases ------------------------------------------------------------------------------

    async def _case_list(self, request: web.Request) -> web.Response:
        status, q = request.query.get("status", ""), request.query.get("q", "")
        statuses = [s.value for s in CaseStatus] + list(REVIEW_STATUSES)
        views = await self._cases.all(status or None, q)
        return self.page(request, "cases.html", "cases", cases=views, statuses=statuses, status=status, q=q)

    async def _case_page(self, request: web.Request, printable: bool = False) -> web.Response:
        view = await self._cases.get(UUID(request.match_info["case_id"]))
        if view is None:
            raise web.HTTPNotFound(text="No such case.")
        return self.page(request, "case.html", "cases", view=view, review_statuses=REVIEW_STATUSES, printable=printable)

    async def _case_print(self, request: web.Request) -> web.Response:
        return await self._case_page(request, printable=True)

    async def _case_json(self, request: web.Request) -> web.Response:
        case_id = UUID(request.match_info["case_id"])
        view = await self._cases.get(case_id)
        if view is None:
            raise web.HTTPNotFound(text="No such case.")
        await self._accounts.audit(request[OPERATOR_KEY], "case_exported", str(case_id), {"format": "json"}, self._clock())
        body = json.dumps(view.as_json(), ensure_ascii=False, indent=2)
        return web.Response(
            text=body, content_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="case-{case_id}.json"'},
        )

    async def _cases_csv(self, request: web.Request) -> web.Response:
        views = await self._cases.all()
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["case_id", "client", "email", "status", "review", "percent_answered", "criteria_claimed", "started", "updated"])
        for view in views:
            writer.writerow([
                view.case.case_id, csv_cell(view.client), csv_cell(view.email), view.case.status.value, view.review,
                view.percent, "; ".join(view.criteria), view.case.created_at.isoformat(), view.last_change.isoformat(),
            ])
        await self._accounts.audit(request[OPERATOR_KEY], "cases_exported", None, {"format": "csv", "cases": len(views)}, self._clock())
        return web.Response(
            text=out.getvalue(), content_type="text/csv", headers={"Content-Disposition": 'attachment; filename="cases.csv"'}
        )

    async def _set_review(self, request: web.Request) -> web.StreamResponse:
        case_id = UUID(request.match_info["case_id"])
        status = str((await request.post()).get("status", ""))
        if status not in REVIEW_STATUSES or await self._cases.get(case_id) is None:
            raise web.HTTPBadRequest(text="Unknown case or review status.")
        operator = request[OPERATOR_KEY]
        await self._cases.set_review(case_id, status, operator.name, self._clock())
        await self._accounts.audit(operator, "review_set", str(case_id), {"status": status}, self._clock())
        raise web.HTTPSeeOther(f"/cases/{case_id}")

    # -- rendering ---------------------------------------------------------------------------

    def page(self, request: web.Request, template: str, section: str, **values: Any) -> web.Response:
        """``template`` (in ``console/templates``, extending ``base.html``) for the logged-in operator; ``section`` lights the nav."""
        return web.Response(text=self._render(template, request[OPERATOR_KEY], section=section, **values), content_type="text/html")

    async def audit(self, request: web.Request, action: str, target: str | None = None, **detail: Any) -> None:
        """Write down that the logged-in operator did ``action`` (on ``target``)."""
        await self._accounts.audit(request[OPERATOR_KEY], action, target, detail, self._clock())

    def now(self) -> datetime:
        """The console's clock."""
        return self._clock()

    def _render(self, template: str, operator: Operator | None, **values: Any) -> str:
        return self._templates.get_template(template).render(operator=operator, **values)


def _local(target: str) -> str:
    """``target`` if it is a path on this console (never another site), else the case list."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/cases"


def _secure(request: web.Request) -> bool:
    """Whether the console is reached over HTTPS (directly or behind a proxy that says so)."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def csv_cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
