"""Checks on the image, video and document objects an SFT dataset points at, before a job pays to read them.

The service refuses a training file whose media objects are too large, too small, too long, or not what their
``format`` says. Those are facts about S3 objects, not about JSON rows, so they are checked where novaflow already
reads the bucket (the dry run): one HEAD per object for the size, and one ranged GET of its first bytes for the
signature, the image dimensions and (for MP4/MOV) the duration. An object that cannot be read is reported as a
note, not a rejection: the data may be right and the caller's permissions wrong.

Limits as published for Nova SFT (image 10 MB and at least 25 px a side, video 50 MB and 90 s, one video and ten
images per message).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from novaflow.aws import error_code, split_s3_uri
from novaflow.data.rejections import Rejection

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_VIDEO_BYTES = 50 * 1024 * 1024
MAX_VIDEO_SECONDS = 90
MIN_IMAGE_PIXELS = 25
HEADER_BYTES = 64 * 1024
"""Bytes read from the start of every object: signatures and image headers live there."""
MAX_MOOV_BYTES = 8 * 1024 * 1024
"""An MP4 ``moov`` box larger than this is not read (its duration is then not checked)."""


class MediaUnreadable(Exception):
    """The object could not be read or parsed: a note for the user, not a verdict on the row."""


@dataclass(frozen=True)
class MediaRef:
    """One media block of a record: where it is in the row, what it claims to be, where it lives."""

    row: int
    path: str
    kind: str
    format: str
    uri: str


def media_refs(number: int, record: Any) -> Iterator[MediaRef]:
    """Every image/video/document block in a Converse record's messages."""
    messages = record.get("messages") if isinstance(record, dict) else None
    for m, message in enumerate(messages or []):
        content = message.get("content") if isinstance(message, dict) else None
        for c, item in enumerate(content or []):
            if not isinstance(item, dict):
                continue
            for kind in ("image", "video", "document"):
                block = item.get(kind)
                if not isinstance(block, dict):
                    continue
                uri = ((block.get("source") or {}).get("s3Location") or {}).get("uri")
                if isinstance(uri, str) and uri.startswith("s3://"):
                    yield MediaRef(number, f"messages[{m}].content[{c}].{kind}", kind, str(block.get("format")), uri)


def sniff_format(head: bytes) -> str | None:
    """The format a file's first bytes say it is (``png``, ``jpeg``, ``gif``, ``webp``, ``mp4``, ``mov``, ...)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head[:64] else "mkv"
    if head.startswith(b"%PDF-"):
        return "pdf"
    return None


SAME_CONTAINER = {"mp4": {"mp4", "mov"}, "mov": {"mp4", "mov"}, "jpg": {"jpeg"}}
"""Declared format -> signatures accepted for it (MP4 and MOV share the ISO base media container)."""


def image_size(head: bytes, fmt: str) -> tuple[int, int]:
    """(width, height) from the header of a PNG, GIF, JPEG or WebP file."""
    try:
        if fmt == "png":
            return struct.unpack(">II", head[16:24])
        if fmt == "gif":
            return struct.unpack("<HH", head[6:10])
        if fmt == "webp":
            return _webp_size(head)
        if fmt == "jpeg":
            return _jpeg_size(head)
    except struct.error:
        pass
    raise MediaUnreadable(f"no {fmt} dimensions in the first {len(head)} bytes")


def _webp_size(head: bytes) -> tuple[int, int]:
    chunk = head[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    raise MediaUnreadable("unknown WebP chunk")


def _jpeg_size(head: bytes) -> tuple[int, int]:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            i += 1
            continue
        marker = head[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", head[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", head[i + 5 : i + 9])
            return w, h
        i += 2 + length
    raise MediaUnreadable("no JPEG frame header")


def mp4_seconds(read: Any, size: int) -> float:
    """Duration of an MP4/MOV from its ``mvhd`` box; ``read(start, end)`` returns bytes (inclusive range)."""
    offset = 0
    while offset + 8 <= size:
        header = read(offset, min(offset + 15, size - 1))
        box_size, box_type = struct.unpack(">I4s", header[:8])
        if box_size == 1:
            box_size = struct.unpack(">Q", header[8:16])[0]
        elif box_size == 0:
            box_size = size - offset
        if box_type == b"moov":
            if box_size > MAX_MOOV_BYTES:
                raise MediaUnreadable(f"moov box of {box_size} bytes is too large to read")
            return _mvhd_seconds(read(offset, offset + box_size - 1))
        if box_size < 8:
            break
        offset += box_size
    raise MediaUnreadable("no moov box")


def _mvhd_seconds(moov: bytes) -> float:
    at = moov.find(b"mvhd")
    if at < 4:
        raise MediaUnreadable("no mvhd box")
    body = moov[at + 4 :]
    if body[0] == 1:
        timescale, duration = struct.unpack(">IQ", body[20:32])
    else:
        timescale, duration = struct.unpack(">II", body[12:20])
    if not timescale:
        raise MediaUnreadable("mvhd timescale is 0")
    return float(duration) / float(timescale)


@dataclass
class MediaReport:
    """Rows refused for their media objects, and objects that could not be checked."""

    checked: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class MediaChecker:
    """Checks objects once each (the same image may be referenced by many rows)."""

    def __init__(self, s3: BaseClient) -> None:
        self.s3 = s3
        self._seen: dict[str, str | None] = {}

    def _range(self, bucket: str, key: str, start: int, end: int) -> bytes:
        body = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")["Body"]
        return bytes(body.read())

    def problem(self, ref: MediaRef) -> str | None:
        """Why the service would refuse this object (None when it would not); MediaUnreadable when unknown."""
        if ref.uri in self._seen:
            return self._seen[ref.uri]
        bucket, key = split_s3_uri(ref.uri)
        try:
            size = int(self.s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
            result = self._problem(ref, bucket, key, size)
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            raise MediaUnreadable(f"cannot read {ref.uri} ({code})") from None
        self._seen[ref.uri] = result
        return result

    def _problem(self, ref: MediaRef, bucket: str, key: str, size: int) -> str | None:
        limit = {"image": MAX_IMAGE_BYTES, "video": MAX_VIDEO_BYTES}.get(ref.kind)
        if limit is not None and size > limit:
            return f"{ref.kind} {ref.uri} is {size} bytes, over the {limit // (1024 * 1024)} MB limit"
        head = self._range(bucket, key, 0, min(HEADER_BYTES, size) - 1) if size else b""
        found = sniff_format(head)
        if found is None:
            raise MediaUnreadable(f"{ref.uri}: unknown file signature")
        declared = ref.format.lower()
        if found not in SAME_CONTAINER.get(declared, {declared}):
            return f"{ref.uri} is a {found} file, which does not match its format {ref.format!r}"
        if ref.kind == "image":
            width, height = image_size(head, found)
            if min(width, height) < MIN_IMAGE_PIXELS:
                return f"image {ref.uri} is {width}x{height} px, below the minimum of {MIN_IMAGE_PIXELS} px a side"
        if ref.kind == "video" and found in ("mp4", "mov"):
            seconds = mp4_seconds(lambda a, b: self._range(bucket, key, a, b), size)
            if seconds > MAX_VIDEO_SECONDS:
                return f"video {ref.uri} lasts {seconds:g} s, over the {MAX_VIDEO_SECONDS} s limit"
        return None


def check_media(records: list[tuple[int, Any]], s3: BaseClient, source: str, *, limit: int = 1000) -> MediaReport:
    """Check every media object of ``records`` (at most ``limit`` distinct objects, noted when cut short)."""
    checker = MediaChecker(s3)
    report = MediaReport()
    uris: set[str] = set()
    for number, record in records:
        for ref in media_refs(number, record):
            if ref.uri not in uris and len(uris) >= limit:
                report.notes.append(f"media objects beyond the first {limit} were not checked")
                return report
            uris.add(ref.uri)
            try:
                problem = checker.problem(ref)
            except MediaUnreadable as exc:
                report.notes.append(f"row {number} {ref.path}: not checked: {exc}")
                continue
            if problem:
                report.rejected.append(Rejection(source, number, ref.path, problem))
                break
    report.checked = len(uris)
    return report
