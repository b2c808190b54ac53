"""The hot folder as a login service: ``focusdrop watch`` started at login, with no terminal.

- macOS: a launchd agent, ``~/Library/LaunchAgents/org.focusdrop.watch.plist`` (RunAtLoad, KeepAlive);
- Linux: a systemd user unit, ``~/.config/systemd/user/focusdrop.service`` (``systemctl --user enable --now
  focusdrop``);
- Windows: a Task Scheduler task as XML (this user's logon, this user's rights, on battery too, no console
  window), for ``schtasks /Create /TN FocusDrop /XML FILE``.
The service writes its own log (In/.focusdrop/focusdrop.log, which ``focusdrop status`` names).
"""
from __future__ import annotations

import getpass
import os
import plistlib
import sys
from pathlib import Path, PureWindowsPath
from html import escape

LABEL = "org.focusdrop.watch"


def command(hot_folder: Path, out: Path) -> list[str]:
    """The service's command line: this Python running ``focusdrop watch IN --out OUT``."""
    return [sys.executable, "-m", "focusdrop.bridge.cli", "watch", str(hot_folder), "--out", str(out)]


def launchd_plist(hot_folder: Path, out: Path) -> bytes:
    return plistlib.dumps({"Label": LABEL, "ProgramArguments": command(hot_folder, out), "RunAtLoad": True,
                           "KeepAlive": {"SuccessfulExit": False}, "ProcessType": "Background"})


def systemd_unit(hot_folder: Path, out: Path) -> bytes:
    quoted = " ".join('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"' for part in command(hot_folder, out))
    return (f"[Unit]\nDescription=FocusDrop hot folder: stack each focus bracket that lands in {hot_folder}\n\n"
            f"[Service]\nExecStart={quoted}\nRestart=on-failure\nRestartSec=5\n\n"
            f"[Install]\nWantedBy=default.target\n").encode("utf-8")


def windows_task(hot_folder: Path, out: Path) -> bytes:
    """A Task Scheduler task (schema 1.2): at this user's logon, as this user with least privilege (no
    administrator rights), on battery too, no time limit, restarted after a failure; run by pythonw.exe,
    which opens no console window."""
    program, *arguments = command(hot_folder, out)
    if PureWindowsPath(program).name.lower() == "python.exe":
        program = str(PureWindowsPath(program).with_name("pythonw.exe"))
    joined = " ".join(f'"{a}"' if " " in a else a for a in arguments)
    user = escape(current_user(), quote=False)
    return ('<?xml version="1.0" encoding="UTF-16"?>\n'
            '<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">\n'
            '  <RegistrationInfo><Description>FocusDrop hot folder</Description></RegistrationInfo>\n'
            f'  <Triggers><LogonTrigger><Enabled>true</Enabled><UserId>{user}</UserId></LogonTrigger></Triggers>\n'
            f'  <Principals><Principal id="Author"><UserId>{user}</UserId><LogonType>InteractiveToken</LogonType>'
            '<RunLevel>LeastPrivilege</RunLevel></Principal></Principals>\n'
            '  <Settings><DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>'
            '<StopIfGoingOnBatteries>false</StopIfGoingOnBatteries><ExecutionTimeLimit>PT0S</ExecutionTimeLimit>'
            '<RestartOnFailure><Interval>PT1M</Interval><Count>3</Count></RestartOnFailure></Settings>\n'
            f'  <Actions Context="Author"><Exec><Command>{escape(program, quote=False)}</Command>'
            f'<Arguments>{escape(joined, quote=False)}</Arguments></Exec></Actions>\n'
            '</Task>\n').encode("utf-16")


def current_user() -> str:
    """This user as Task Scheduler names one: DOMAIN\\user on Windows (USERDOMAIN, USERNAME), else the
    login name."""
    name = os.environ.get("USERNAME") or getpass.getuser()
    domain = os.environ.get("USERDOMAIN")
    return f"{domain}\\{name}" if domain else name


def service_files(dest: Path | None) -> dict[Path, str]:
    """Where each service file goes -> which kind ("launchd", "systemd", "windows"): this system's own
    place, or all three under ``dest``/service."""
    if dest is not None:
        folder = dest / "service"
        return {folder / f"{LABEL}.plist": "launchd", folder / "focusdrop.service": "systemd",
                folder / "FocusDrop-task.xml": "windows"}
    if sys.platform == "darwin":
        return {Path.home() / "Library" / "LaunchAgents" / f"{LABEL}.plist": "launchd"}
    if sys.platform == "win32":
        return {Path.home() / "FocusDrop" / "FocusDrop-task.xml": "windows"}
    return {Path.home() / ".config" / "systemd" / "user" / "focusdrop.service": "systemd"}


def contents(kind: str, hot_folder: Path, out: Path) -> bytes:
    return {"launchd": launchd_plist, "systemd": systemd_unit, "windows": windows_task}[kind](hot_folder, out)


NEXT_STEP = {
    "launchd": "launchctl load ~/Library/LaunchAgents/" + LABEL + ".plist (or log out and in)",
    "systemd": "systemctl --user daemon-reload && systemctl --user enable --now focusdrop",
    "windows": "schtasks /Create /TN FocusDrop /XML \"%USERPROFILE%\\FocusDrop\\FocusDrop-task.xml\"",
}
