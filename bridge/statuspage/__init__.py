"""The status page: the hot folder in a browser. app.py answers the requests (Flask), status.html is the
page, which polls app.py's JSON every two seconds, and server.py serves both (waitress) beside the service
(focusdrop watch --ui) or on its own (focusdrop ui)."""
