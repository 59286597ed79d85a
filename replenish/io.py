"""Files written so that a reader never sees half of one: the plan publisher, `generate-data` and the
benchmarks all write through here.  Files are created as a plain ``open`` would create them: mode 0666
less the umask."""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

import pandas as pd

Content = pd.DataFrame | str  # a table (CSV or Parquet by the file's suffix) or text

# Temporary names carry the writer's process id, so a publish can tell a dead writer's leftovers
# from the files another live publish is still writing.
TEMPORARY_NAME = re.compile(r"^\..+\.(?P<pid>\d+)-[0-9a-f]+\.tmp$")


def write_atomically(path: Path, content: Content) -> Path:
    """Readers see the old file or the new one, never half of one."""
    temporary = temporary_name(path)
    try:
        write_new_file(temporary, encoded(content, path.suffix))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def encoded(content: Content, suffix: str) -> bytes:
    if isinstance(content, str):
        return content.encode("utf-8")
    if suffix == ".parquet":
        return content.to_parquet(index=False)
    return content.to_csv(index=False).encode("utf-8")


def write_json_atomically(path: Path, data: Any) -> Path:
    """`data` as indented JSON, in a folder created if missing (a benchmark's --out)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, json.dumps(data, indent=2))


def write_new_file(path: Path, data: bytes) -> None:
    """Created with mode 0666 less the umask, like open(); flushed to disk before anyone renames it."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")  # hidden: never read as a plan
