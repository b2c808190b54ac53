"""What ``focusdrop install`` wrote, so that ``uninstall`` removes exactly that and nothing else.

The record is saved as each file is written, before the next: a run stopped part-way (a folder it cannot
write, a missing application) still leaves a record of everything it did write."""
from __future__ import annotations

import json
from pathlib import Path


class Record:
    """The files written and the folders created by installs into one place, kept in a JSON file."""

    def __init__(self, path: Path):
        self.path = path
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        self.files: list[str] = data.get("files", [])
        self.folders: list[str] = data.get("folders", [])

    def write_file(self, path: Path, data: bytes) -> None:
        """Write ``path`` (atomically), creating and noting the folders it needs; the record is saved after
        each folder and after the file. Raises OSError from the file system."""
        from focusdrop.engine.save import write_durably  # with the image writers: not for `focusdrop --help`
        missing = [p for p in reversed(path.parents) if not p.exists()]
        for folder in missing:
            folder.mkdir()
            self.folders.append(str(folder))
            self.save()
        write_durably(path, data)
        if str(path) not in self.files:
            self.files.append(str(path))
            self.save()

    def save(self) -> None:
        from focusdrop.engine.save import write_durably
        for folder in [p for p in reversed(self.path.parents) if not p.exists()]:  # noted: uninstall removes it
            folder.mkdir()
            self.folders.append(str(folder))
        write_durably(self.path, json.dumps({"files": self.files, "folders": self.folders}, indent=1).encode())

    def remove_all(self) -> list[str]:
        """Delete every file noted, then every folder noted that is now empty, then the record itself.
        Returns what was removed."""
        removed = []
        self.path.unlink(missing_ok=True)  # first: its folder may be one of those to remove
        for name in self.files:
            if Path(name).is_file():
                Path(name).unlink()
                removed.append(name)
        for name in sorted(self.folders, key=len, reverse=True):
            folder = Path(name)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                removed.append(name + "/")
        return removed
