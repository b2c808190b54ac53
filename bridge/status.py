"""``focusdrop status``: the hot folder's queue as the journal records it."""
from __future__ import annotations

import time

from bridge.journal import STATES, Journal


def status_text(journal: Journal, last: int = 10) -> str:
    """Counts per state, then the ``last`` most recent stacks, one line each."""
    jobs = journal.jobs()
    counts = {state: sum(j.state == state for j in jobs) for state in STATES}
    lines = ["  ".join(f"{state}: {counts[state]}" for state in ("waiting", "running", "done", "failed"))]
    if counts["claiming"]:
        lines[0] += f"  claiming: {counts['claiming']}"
    for job in jobs[-last:]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.finished or job.started or job.created))
        detail = ", ".join(job.outputs) if job.state == "done" else (job.error or "")
        lines.append(f"{when}  {job.state:<8} {job.name} ({len(job.frames)} frames)  {detail}".rstrip())
    return "\n".join(lines)
