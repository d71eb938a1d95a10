"""Small value helpers shared by the format readers, and the guards every reader goes through
for hostile input: JSON nested too deeply to parse, numbers no clock can hold, zip members
that inflate far beyond their compressed size."""

from __future__ import annotations

import gzip
import json
import math
import zipfile
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

from agentsignals._import.builder import valid_ns

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# A zip member may not inflate to more than MAX_MEMBER_RATIO times its compressed size once it
# is larger than _ZIP_RATIO_FLOOR (Inspect's sample JSON compresses 2-20x; deflate's ceiling
# is about 1030x, bzip2's and lzma's far higher), nor beyond MAX_MEMBER_BYTES at all: a zip
# bomb is refused before a byte of it is inflated.
MAX_MEMBER_RATIO = 200
_ZIP_RATIO_FLOOR = 32 << 20
MAX_MEMBER_BYTES = 512 << 20


class _TooDeep(json.JSONDecodeError):
    def __str__(self) -> str:
        return self.msg


def loads_json(data: str | bytes) -> Any:
    """`json.loads`, with a document nested too deeply to parse (RecursionError) reported as
    the `json.JSONDecodeError` every reader already handles for malformed lines."""
    try:
        return json.loads(data)
    except RecursionError:
        raise _TooDeep("JSON nested too deeply to read", "", 0) from None


def read_zip_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A zip member's bytes; ValueError for one that would inflate like a zip bomb.

    The sizes come from the archive's directory, and zipfile never inflates past the declared
    size (a member that lies fails its CRC check), so the check bounds memory."""
    info = archive.getinfo(name)
    size, packed = info.file_size, max(info.compress_size, 1)
    if size > MAX_MEMBER_BYTES or (size > _ZIP_RATIO_FLOOR and size > MAX_MEMBER_RATIO * packed):
        raise ValueError(
            f"refused: inflates to {size:,} bytes from {packed:,} ({size // packed}x), "
            f"beyond the limit for a trajectory (a zip bomb?)"
        )
    return archive.read(info)


def timestamp_ns(value: Any, *, numbers: Literal["ms", "s"] | None = "ms") -> int | None:
    """Unix nanoseconds from an ISO-8601 timestamp (naive ones taken as UTC), or from a bare
    number of Unix milliseconds (`numbers="ms"`) or seconds (`"s"`); None for anything else,
    including numbers when `numbers` is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or not -1e19 < value < 1e19:  # no clock reads 1e19 ms
            return None
        if numbers == "ms":
            return valid_ns(int(value * 1_000_000))
        if numbers == "s" and value <= 1e14:  # larger: already milli/micro/nanoseconds
            return valid_ns(round(float(value) * 1e6) * 1000)
        return None
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return valid_ns((moment - _EPOCH) // timedelta(microseconds=1) * 1000)
    except OverflowError:  # an offset that pushes year 1 or 9999 out of range
        return None


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
