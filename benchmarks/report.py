"""Writing a benchmark's results into its own section of BENCHMARKS.md."""

from __future__ import annotations

import os
from pathlib import Path

HEADER = (
    "# cogrl benchmarks\n\nEvery figure the project claims, with the command that produced it.\n"
)


def write_section(path: Path, section: str, text: str) -> None:
    """Replace the section headed ``section`` (or append it), keeping every other one."""
    old = path.read_text() if path.exists() else HEADER
    if section in old:
        head, _, rest = old.partition(section)
        end = rest.find("\n## ")
        tail = rest[end + 1 :] if end >= 0 else ""
        new = head + text + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(new)
    os.replace(tmp, path)
