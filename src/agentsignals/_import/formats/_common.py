"""Small value helpers shared by the format readers, and the guards every reader goes through
for hostile input: JSON nested too deeply to parse, numbers no clock can hold, zip members
that inflate far beyond their compressed size."""

from __future__ import annotations

import json
import math
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

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
