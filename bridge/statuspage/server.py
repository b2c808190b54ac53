"""Serving the status page (bridge.statuspage.app) with waitress, a production WSGI server in pure Python:
in a thread beside the hot-folder service, or in the foreground for ``focusdrop ui``. Requests are capped at
MAX_REQUEST bytes of headers (past that, and for a malformed request, waitress answers 431 or 400 itself)
and at BUFFERED bytes of body, which the app refuses, with a line in the log, past MAX_REQUEST."""
from __future__ import annotations

import logging
import threading

from focusdrop.bridge.hotfolder.layout import Layout
from focusdrop.bridge.settings import UI_ADDRESS, Settings
from focusdrop.bridge.statuspage.app import MAX_REQUEST, create_app

log = logging.getLogger("focusdrop")

BUFFERED = 1024 * 1024  # bytes of a request body waitress takes in before the app sees the request


class StatusPage:
    """The status page of ``settings``' hot folder, bound to ``settings.ui`` (UI_ADDRESS if empty).
    Raises ValueError, in one line, when that address cannot be bound."""

    def __init__(self, settings: Settings):
        from waitress.server import create_server
        address = settings.ui or UI_ADDRESS
        host, _, port = address.rpartition(":")
        app = create_app(Layout(settings.hot_folder, settings.out), settings.quiet, settings.max_megapixels,
                         settings.ui_token)
        try:
            self.server = create_server(app, host=host.strip("[]"), port=int(port), threads=4, ident="FocusDrop",
                                        max_request_header_size=MAX_REQUEST, max_request_body_size=BUFFERED)
        except OSError as e:
            raise ValueError(f"--ui {address}: cannot listen there ({e.strerror or e})") from None
        self.url = f"http://{address}/"
        self.thread: threading.Thread | None = None
        log.info("status page: %s%s", self.url, " (every request needs the token)" if settings.ui_token else "")

    def start(self) -> "StatusPage":
        """Serve in a thread of its own (beside the service)."""
        self.thread = threading.Thread(target=self.server.run, name="status-page", daemon=True)
        self.thread.start()
        return self

    def serve(self) -> None:
        """Serve in this thread until interrupted."""
        try:
            self.server.run()
        except KeyboardInterrupt:
            pass

    def close(self) -> None:
        self.server.close()
