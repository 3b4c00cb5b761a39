"""Edit `.env` safely: the signing secret Spectrum returns is shown only once."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def add_secret(path: Path, name: str, secret: str) -> None:
    """Put `secret` first in the comma-separated list `name`, keeping the others.

    The old secrets stay accepted, so a delivery signed with one still in use is
    never refused. The file is replaced atomically and readable by its owner only.
    """
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for index, line in enumerate(lines):
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            others = [s.strip() for s in value.split(",") if s.strip() and s.strip() != secret]
            lines[index] = f"{name}={','.join([secret, *others])}"
            break
    else:
        lines.append(f"{name}={secret}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".env.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
