"""Small value helpers shared by the format readers."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_ns(value: Any, *, numbers: Literal["ms", "s"] | None = "ms") -> int | None:
    """Unix nanoseconds from an ISO-8601 timestamp (naive ones taken as UTC), or from a bare
    number of Unix milliseconds (`numbers="ms"`) or seconds (`"s"`); None for anything else,
    including numbers when `numbers` is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if numbers == "ms":
            return int(value * 1_000_000)
        if numbers == "s" and value <= 1e14:  # larger: already milli/micro/nanoseconds
            return round(float(value) * 1e6) * 1000
        return None
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def nonempty_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# ------------------------------------------------------------------------ compressed sources

GZIP_MAGIC = b"\x1f\x8b"
GZIP_SUFFIX = ".gz"


def is_gzip(path: Path) -> bool:
    """Whether the file is gzip-compressed (by its magic bytes, whatever its name)."""
    try:
        with path.open("rb") as fh:
            return fh.read(2) == GZIP_MAGIC
    except OSError:
        return False


def source_name(path: Path) -> str:
    """The file's name as its format knows it: `x.traj` for `x.traj.gz`. Trajectories are often
    stored gzip-compressed; readers match names on this, and keep `path` itself (the real file)
    as the source path."""
    name = path.name
    return name[: -len(GZIP_SUFFIX)] if name.lower().endswith(GZIP_SUFFIX) else name


def source_stem(path: Path) -> str:
    """`source_name` without its last suffix (`x` for `x.traj.gz`), as `Path.stem`."""
    name = source_name(path)
    dot = name.rfind(".")
    return name[:dot] if dot > 0 else name


def open_source(path: Path) -> IO[bytes]:
    """The file's bytes as a binary stream, decompressed when it is gzip-compressed. Reading a
    corrupt gzip stream raises OSError, EOFError or zlib.error."""
    fh = path.open("rb")
    try:
        magic = fh.read(2)
        fh.seek(0)
    except OSError:
        fh.close()
        raise
    if magic != GZIP_MAGIC:
        return fh
    fh.close()
    return gzip.GzipFile(path, "rb")  # type: ignore[return-value]  # a binary stream


def read_source(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip-compressed. A corrupt or truncated gzip
    stream raises OSError (EOFError and zlib errors are turned into it)."""
    with path.open("rb") as fh:
        data = fh.read()
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise OSError(f"corrupt gzip stream: {exc}") from exc


def read_head(path: Path, size: int) -> bytes:
    """The first `size` bytes of the file's content (decompressed), b"" when unreadable."""
    try:
        with open_source(path) as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error):
        return b""
