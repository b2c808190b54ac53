"""The status page: its rules of access on Flask's test client (token, forgery, unknown stacks, sizes), then a
real ``focusdrop watch --ui`` stacking real brackets, driven in Debian's chromium: stacks listed as they
finish, a report opened with its pictures, a corrupt bracket failed with its reason, retried after the fix as
one stack, and the page through a kill -9 of the service and its restart. Screenshots in test-artefacts/."""
from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from browser import screenshot
from focusdrop.bridge.hotfolder.layout import Layout, Workspace
from focusdrop.bridge.hotfolder.recovery import recover
from focusdrop.bridge.samples import write_bracket
from focusdrop.bridge.settings import SettingError, resolve
from focusdrop.bridge.statuspage.app import FORGERY_HEADER, TOKEN_COOKIE, create_app
from focusdrop.engine.synthetic import BracketSpec
from hotfolder import QUIET, wait_for

TOKEN = "a-token-of-some-length"


@pytest.fixture
def hot_folder(tmp_path):
    """A hot folder with one done stack (with its report) and one failed stack (with its error.txt)."""
    layout = Layout(tmp_path / "In", tmp_path / "Out")
    journal = Workspace(layout).journal
    for name, state in (("ring", "done"), ("broken", "failed")):
        job = journal.add(name, lambda job_id: layout.jobs / str(job_id), ["a.tif", "b.tif"], {}, [])
        archive = (layout.done if state == "done" else layout.failed) / name
        archive.mkdir(parents=True)
        (archive / ("report.html" if state == "done" else "error.txt")).write_text(f"{name}'s page")
        journal.update(job.id, state=state, archive=str(archive), finished=time.time(),
                       error="frame b.tif: cut short" if state == "failed" else None)
    return layout


def client(layout: Layout, token: str = ""):
    return create_app(layout, 1.0, 200.0, token).test_client()


def test_a_report_is_served_by_the_stacks_id_and_nothing_else(hot_folder, caplog):
    web = client(hot_folder)
    status = web.get("/api/status").get_json()
    assert [(s["name"], s["state"], s["report"]) for s in status["stacks"]] == [("broken", "failed", False),
                                                                                ("ring", "done", True)]
    assert status["stacks"][0]["error_text"] == "broken's page" and status["stacks"][0]["folder"] == "failed/broken"
    assert "archive" not in status["stacks"][0] and "log" not in status  # no paths of this machine
    assert web.get("/stacks/1/report").status_code == 200 and b"ring's page" in web.get("/stacks/1/report").data
    with caplog.at_level(logging.WARNING, "focusdrop"):
        assert web.get("/stacks/99/report").status_code == 404
        assert web.get("/stacks/2/report").status_code == 404  # failed: it has no report
        assert web.get("/stacks/..%2F..%2Fetc/report").status_code == 404
        assert web.get("/../../etc/passwd").status_code == 404
    assert "status page: 404 for GET /stacks/99/report: no stack 99" in caplog.text
    shutil.rmtree(hot_folder.done / "ring")  # the folder deleted while the page is open
    assert web.get("/stacks/1/report").status_code == 404
    assert web.get("/api/status").get_json()["stacks"][1]["report"] is False


def test_a_live_brackets_preview_is_served_by_its_name_and_nothing_else(hot_folder):
    """A live job folder is listed with its frames in and its preview, which is served from the previews
    folder by the exact name listed there."""
    folder = hot_folder.hot_folder / "ring.partial"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"count": 4}')
    hot_folder.live.mkdir()
    (hot_folder.live / "ring.partial.jpg").write_bytes(b"\xff\xd8 a preview")
    web = client(hot_folder)
    [item] = web.get("/api/status").get_json()["waiting"]
    assert item == {"file": "ring.partial/", "state": "live, 0 of 4 frames in", "problem": "",
                    "preview": "live/ring.partial.jpg"}
    served = web.get("/live/ring.partial.jpg")
    assert served.status_code == 200 and served.data == b"\xff\xd8 a preview" and served.mimetype == "image/jpeg"
    assert served.headers["Cache-Control"] == "no-store"
    for name in ("other.jpg", "..%2Fjournal.sqlite", "%2E%2E"):
        assert web.get(f"/live/{name}").status_code == 404


def test_every_request_needs_the_token_when_there_is_one(hot_folder):
    web = client(hot_folder, TOKEN)
    assert web.get("/").status_code == 401
    assert web.get("/api/status").status_code == 401
    assert web.get("/api/status", headers={"Authorization": "Bearer wrong-token-of-length"}).status_code == 401
    assert web.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    first = web.get(f"/?token={TOKEN}")
    assert first.status_code == 302 and first.headers["Location"] == "/"  # the token leaves the address bar
    assert f"{TOKEN_COOKIE}={TOKEN}" in first.headers["Set-Cookie"] and "HttpOnly" in first.headers["Set-Cookie"]
    assert web.get("/api/status").status_code == 200  # the cookie carries it from then on
    assert web.get("/stacks/1/report").status_code == 200


def test_retry_needs_the_pages_form_token_and_a_failed_stack(hot_folder):
    web = client(hot_folder)
    form = web.get("/api/status").get_json()["form_token"]
    assert web.post("/stacks/2/retry").status_code == 403  # a form from another site cannot send the header
    assert web.post("/stacks/2/retry", headers={FORGERY_HEADER: "guess"}).status_code == 403
    assert web.post("/stacks/2/retry", headers={FORGERY_HEADER: form, "Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert web.post("/stacks/1/retry", headers={FORGERY_HEADER: form}).status_code == 409  # done, not failed
    assert web.get("/stacks/2/retry").status_code == 405
    assert web.post("/stacks/2/retry", headers={FORGERY_HEADER: form}, data=b"x" * 100_000).status_code == 413
    answer = web.post("/stacks/2/retry", headers={FORGERY_HEADER: form})
    assert answer.status_code == 202 and answer.get_json()["folder"] == "broken"
    assert (hot_folder.hot_folder / "broken").is_dir() and not (hot_folder.hot_folder / "broken" / "error.txt").exists()
    assert not (hot_folder.failed / "broken").exists()
    assert [s["name"] for s in web.get("/api/status").get_json()["stacks"]] == ["ring"]  # the old one is not listed


@pytest.mark.parametrize("moved", [False, True])
def test_a_retry_cut_short_by_a_kill_is_finished_at_the_next_start(hot_folder, moved):
    """Killed after the retry was journaled (``moved``: and after its first rename): the next start moves the
    frames on into the hot folder, once."""
    workspace = Workspace(hot_folder)
    target = hot_folder.hot_folder / "broken"
    workspace.journal.update(2, state="retried", folder=target)
    if moved:
        (hot_folder.failed / "broken").rename(target.with_name("broken.partial"))
    recover(workspace)
    assert target.is_dir() and not (target / "error.txt").exists()
    assert not (hot_folder.failed / "broken").exists() and not target.with_name("broken.partial").exists()
    recover(workspace)  # and again: nothing more moves
    assert target.is_dir()


def test_an_address_beyond_this_machine_needs_a_token():
    with pytest.raises(SettingError, match="open to the network; give ui_token"):
        resolve({"ui": "0.0.0.0:8765"})
    assert resolve({"ui": "0.0.0.0:8765", "ui_token": TOKEN}).ui == "0.0.0.0:8765"
    assert resolve({"ui": "127.0.0.1:9000"}).ui == "127.0.0.1:9000"
    assert resolve({"ui": "localhost:9000"}).ui == "localhost:9000"


def test_the_service_refuses_to_start_with_an_open_address_and_no_token(tmp_path):
    done = subprocess.run([sys.executable, "-m", "focusdrop.bridge.cli", "watch", str(tmp_path / "In"), "--out",
                           str(tmp_path / "Out"), "--ui", "0.0.0.0:8765"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "focusdrop: error: the command line: ui = '0.0.0.0:8765': the status page would be open to the network; give "
        "ui_token (--ui-token TOKEN or @FILE) so that only those who have it see it")
    assert not (tmp_path / "In").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """``focusdrop watch --ui`` as a real process on root/In -> root/Out, started and killed at will."""

    def __init__(self, root: Path):
        self.root, self.port = root, _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None
        self.log = root / "log.txt"

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "focusdrop.bridge.cli", "watch", str(self.root / "In"), "--out",
                 str(self.root / "Out"), "--quiet", QUIET, "--ui", f"127.0.0.1:{self.port}"], stdout=out, stderr=out)
        wait_for(lambda: self.log.read_text().count("watching") > self.starts, 30, self.log)
        self.starts += 1

    starts = 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


def _job_folder(source: Path, hot_folder: Path, name: str) -> None:
    """Export a bracket as a job folder, as the Bridge script does: written as NAME.partial/, then renamed."""
    shutil.copytree(source, hot_folder / f"{name}.partial")
    (hot_folder / f"{name}.partial").rename(hot_folder / name)


@pytest.fixture
def service(tmp_path):
    running = Service(tmp_path)
    (tmp_path / "In").mkdir()
    running.start()
    yield running
    running.stop()


def test_malformed_and_huge_requests_are_refused_in_a_line_each_and_the_service_goes_on(service):
    answers = []
    for request in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n",
                    b"POST /stacks/1/retry HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
                    b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as connection:
            connection.sendall(request)
            answers.append(connection.recv(100).split(b"\r\n")[0].split(b" ")[1])
    assert answers == [b"400", b"431", b"413", b"200"]
    wait_for(lambda: "status page: 413 for a request" in service.log.read_text(), 10, service.log)
    log = service.log.read_text()
    assert "status page: 400 for a request from 127.0.0.1: bad request" in log
    assert "status page: 431 for a request from 127.0.0.1: request header fields too large" in log
    assert service.process.poll() is None


def test_the_page_lists_stacks_as_they_finish_and_opens_their_reports(tmp_path, service, browser):
    write_bracket(BracketSpec(width=480, height=320, frames=5, seed=3), tmp_path / "brackets" / "ring")
    page = browser.new_page(viewport={"width": 1150, "height": 800})
    page.goto(service.url)
    page.locator("#no-stacks").wait_for()
    _job_folder(tmp_path / "brackets" / "ring", tmp_path / "In", "ring")
    done = page.locator("tr.stack.done")
    done.wait_for(timeout=60_000)
    assert done.locator(".name").inner_text() == "ring"
    thumbnail = done.locator("img.thumb")
    thumbnail.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    with page.context.expect_page() as opened:
        done.locator("a.report").click()
    report = opened.value
    report.wait_for_load_state()
    assert report.locator("h1").inner_text() == "ring"
    assert report.locator("tr.frame").count() == 5
    assert report.eval_on_selector_all("img", "images => images.filter(i => !i.complete || !i.naturalWidth).length") == 0
    screenshot(page, "status-page")
    screenshot(report, "status-page-report")


def test_a_corrupt_bracket_fails_with_its_reason_and_a_retry_after_the_fix_gives_one_result(tmp_path, service,
                                                                                            browser):
    write_bracket(BracketSpec(width=480, height=320, frames=5, seed=4), tmp_path / "brackets" / "pads")
    good = (tmp_path / "brackets" / "pads" / "frame_03.tif").read_bytes()
    shutil.copytree(tmp_path / "brackets" / "pads", tmp_path / "brackets" / "cut")
    (tmp_path / "brackets" / "cut" / "frame_03.tif").write_bytes(good[:5000])
    page = browser.new_page(viewport={"width": 1150, "height": 800})
    page.goto(service.url)
    _job_folder(tmp_path / "brackets" / "cut", tmp_path / "In", "pads")
    failed = page.locator("tr.stack.failed")
    failed.wait_for(timeout=60_000)
    assert "frame_03.tif: incomplete file" in failed.locator(".error").inner_text()
    assert "What to do" in failed.locator(".error").inner_text()  # error.txt, whole
    screenshot(page, "status-page-failed")

    service.kill()  # kill -9: the page says so, and carries on when the service is back
    page.locator("#connection.down").wait_for(timeout=10_000)
    service.start()
    page.locator("#connection:not(.down)").wait_for(timeout=10_000)
    assert page.locator("tr.stack.failed").count() == 1

    (tmp_path / "In" / "failed" / "pads" / "frame_03.tif").write_bytes(good)  # the fix
    page.locator("tr.stack.failed button.retry").click()
    page.locator("tr.stack.done").wait_for(timeout=60_000)
    assert page.locator("tr.stack").count() == 1  # one stack: the failed one is not listed beside it
    assert sorted(p.name for p in (tmp_path / "Out").iterdir()) == ["pads.psd"]
    assert sorted(p.name for p in (tmp_path / "In" / "done" / "pads").iterdir()) == \
        [f"frame_{k:02d}.tif" for k in range(1, 6)] + ["report.html", "report.jpg", "report.json"]
    assert list((tmp_path / "In" / "failed").iterdir()) == []
    assert "retried: pads" in service.log.read_text()
    screenshot(page, "status-page-retried")


def test_a_live_bracket_shows_its_frames_in_and_the_stack_so_far(tmp_path, service, browser):
    """Frames landing in a live job folder: the page lists it with its count and a preview that loads, a new
    one after each frame; when the last frame is in, the bracket becomes a done stack."""
    _, frames = write_bracket(BracketSpec(width=480, height=320, frames=4, seed=3), tmp_path / "brackets")
    folder = tmp_path / "In" / "ring.partial"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"count": 4}')
    page = browser.new_page(viewport={"width": 1150, "height": 800})
    page.goto(service.url)
    for frame in frames[:2]:
        shutil.copy(frame, folder / frame.name)
    live = page.locator("#waiting li", has_text="live, 2 of 4 frames in")
    live.wait_for(timeout=30_000)
    preview = live.locator("img.live")
    preview.wait_for(timeout=30_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=preview.element_handle())
    screenshot(page, "status-page-live")
    for frame in frames[2:]:
        shutil.copy(frame, folder / frame.name)
    page.locator("tr.stack.done").wait_for(timeout=60_000)
    assert page.locator("img.live").count() == 0
