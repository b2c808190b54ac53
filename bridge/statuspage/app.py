"""The status page's web app (Flask): the hot folder's stacks as the journal records them, newest first, each
with its thumbnail and report; the files waiting or unusable; throughput; failed stacks' errors and a Retry
button (bridge.hotfolder.lifecycle.retry). It reads the journal and the folders the service keeps, and a
request names a stack by its journal id only: no path from a request reaches the file system.

With a token, every request must carry it: ``?token=`` once (it is moved into a cookie the browser keeps,
and out of the address bar), the cookie, or ``Authorization: Bearer``. Retry is a POST that must carry the
page's anti-forgery token in a header, which a page from another site can neither read nor send.
"""
from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from flask import Flask, Response, abort, jsonify, redirect, render_template, request, send_file
from werkzeug.exceptions import HTTPException

from focusdrop.bridge.hotfolder.layout import ERROR, REPORT_PAGE, Layout, Workspace
from focusdrop.bridge.hotfolder.lifecycle import retry
from focusdrop.bridge.hotfolder.status import status_data

log = logging.getLogger("focusdrop")

MAX_REQUEST = 16 * 1024  # bytes of a request body or header block: no request to this page needs more
LISTED = 200             # stacks the page lists
TOKEN_COOKIE = "focusdrop_token"
FORGERY_HEADER = "X-FocusDrop-Form"
THUMBNAIL = Path(REPORT_PAGE).with_suffix(".jpg").name  # bridge.stacking writes it beside the report
PAGE_POLICY = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; " \
              "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
REPORT_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; " \
                "frame-ancestors 'none'; base-uri 'none'"


def _read_text(path: Path, limit: int = 8192) -> str:
    """A small text file's first ``limit`` characters, "" if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:limit]
    except OSError:
        return ""


def create_app(layout: Layout, quiet: float, max_megapixels: float, token: str = "") -> Flask:
    """The app for the hot folder ``layout`` (its journal must exist); ``token``: "" for none."""
    app = Flask(__name__, template_folder=".")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST
    workspace = Workspace(layout)
    forgery_token = secrets.token_urlsafe(24)

    def job_or_404(job_id: int):
        job = workspace.journal.find(job_id)
        if job is None or job.state == "retried":
            abort(404, f"no stack {job_id}")
        return job

    def archived(job, name: str) -> Path:
        path = Path(job.archive or "") / name
        if not job.archive or not path.is_file():
            abort(404, f"{job.name} has no {name} (its folder in done/ moved or deleted?)")
        return path

    @app.before_request
    def authorise() -> Response | None:
        if (request.content_length or 0) > MAX_REQUEST:  # before anything else; no route here reads a body
            abort(413, f"a request of {request.content_length} bytes; at most {MAX_REQUEST}")
        if not token:
            return None
        given = request.args.get("token")
        if given is not None and request.method == "GET" and hmac.compare_digest(given, token):
            response = redirect(request.path)  # the token leaves the address bar (and the history)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
            return response
        header = request.headers.get("Authorization", "")
        carried = request.cookies.get(TOKEN_COOKIE) or (header[7:] if header.startswith("Bearer ") else "")
        if not (carried and hmac.compare_digest(carried, token)):
            abort(401, "no token or a wrong one (open the page once as /?token=TOKEN)")
        return None

    @app.after_request
    def guard(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", REPORT_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(HTTPException)
    def refused(error: HTTPException) -> tuple[Response, int]:
        reason = error.name.lower() if error.description == type(error).description else error.description
        log.warning("status page: %d for %s %s: %s", error.code, request.method, request.path[:200], reason)
        return jsonify(error=reason), error.code

    @app.get("/")
    def page() -> Response:
        nonce = secrets.token_urlsafe(16)
        response = Response(render_template("status.html", nonce=nonce, hot_folder=str(layout.hot_folder)))
        response.headers["Content-Security-Policy"] = PAGE_POLICY.format(nonce=nonce)
        return response

    @app.get("/api/status")
    def status() -> Response:
        data = status_data(workspace.journal, layout, quiet, LISTED, max_megapixels)
        for stack in data["stacks"]:
            folder = Path(stack["archive"] or "")
            stack["outputs"] = [Path(o).name for o in stack["outputs"]]
            stack["report"] = bool(stack["archive"]) and (folder / REPORT_PAGE).is_file()
            stack["thumbnail"] = bool(stack["archive"]) and (folder / THUMBNAIL).is_file()
            if stack["state"] == "failed" and stack["archive"]:
                stack["folder"] = f"{folder.parent.name}/{folder.name}"  # failed/NAME, where to fix the frames
                stack["error_text"] = _read_text(folder / ERROR) or stack["error"]
            del stack["archive"]  # paths on this machine stay on it
        for item in data["waiting"]:
            item["preview"] = item["preview"] and f"live/{Path(item['preview']).name}"
        data["stacks"].reverse()  # newest first
        data["form_token"] = forgery_token
        del data["log"]
        return jsonify(data)

    @app.get("/stacks/<int:job_id>/report")
    def report(job_id: int) -> Response:
        return send_file(archived(job_or_404(job_id), REPORT_PAGE), mimetype="text/html")

    @app.get("/stacks/<int:job_id>/thumbnail")
    def thumbnail(job_id: int) -> Response:
        return send_file(archived(job_or_404(job_id), THUMBNAIL), mimetype="image/jpeg")

    @app.get("/live/<name>")
    def live_preview(name: str) -> Response:
        """A live bracket's preview, named as the folder holds it (a name not there: 404)."""
        if name not in (os.listdir(layout.live) if layout.live.is_dir() else []) or name.endswith(".partial"):
            abort(404)
        response = send_file(layout.live / name, mimetype="image/jpeg")
        response.headers["Cache-Control"] = "no-store"  # a new one after each frame
        return response

    @app.post("/stacks/<int:job_id>/retry")
    def retry_stack(job_id: int) -> tuple[Response, int]:
        sent = request.headers.get(FORGERY_HEADER, "")
        if not hmac.compare_digest(sent, forgery_token) or request.headers.get("Sec-Fetch-Site", "same-origin") \
                not in ("same-origin", "none"):
            abort(403, "a retry must come from the status page itself")
        job = job_or_404(job_id)
        try:
            retried = retry(workspace, job)
        except ValueError as e:
            abort(409, str(e))
        return jsonify(retried=retried.name, folder=retried.folder.name), 202

    return app
