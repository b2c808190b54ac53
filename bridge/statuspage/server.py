"""Serving the status page (bridge.statuspage.app) with waitress, a production WSGI server in pure Python:
in a thread beside the hot-folder service, or in the foreground for ``focusdrop ui``. Requests are capped at
MAX_REQUEST bytes of headers and BUFFERED bytes of body: past those, and for a malformed request, waitress
answers 431, 413 or 400 itself, with a line in the log (the app refuses a body past MAX_REQUEST too)."""
from __future__ import annotations

import logging
import threading

from focusdrop.bridge.hotfolder.layout import Layout
from focusdrop.bridge.settings import UI_ADDRESS, Settings
from focusdrop.bridge.statuspage.app import MAX_REQUEST, create_app

log = logging.getLogger("focusdrop")

BUFFERED = 1024 * 1024  # bytes of a request body waitress takes in before the app sees the request


def _logged_channel() -> type:
    """waitress's connection class, with a line in the log for each request it refuses itself."""
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    class LoggedError(ErrorTask):
        def execute(self) -> None:
            super().execute()
            error = self.request.error
            log.warning("status page: %d for a request from %s: %s (%s)", error.code, self.channel.addr[0],
                        error.reason.lower(), str(error.body)[:200])

    class LoggedChannel(HTTPChannel):
        error_task_class = LoggedError
    return LoggedChannel


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
        self.server.channel_class = _logged_channel()
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
