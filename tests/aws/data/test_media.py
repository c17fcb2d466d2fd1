"""Media objects of an SFT dataset checked in S3: the Forge SDK's size, signature, dimension and duration cases.

The SDK's validator tests (aws/nova-forge-sdk tests/unit/dataset/test_sft_dataset_validator.py: image and video
file size, format consistency, image dimensions, video duration) feed mocked S3 answers to its media checks. Here
the same limits are exercised with real objects in the embedded S3, built byte by byte: a PNG of a given size, a
JPEG where a PNG was declared, an MP4 whose ``mvhd`` box says how long it lasts.
"""

from __future__ import annotations

import json
import struct
import zlib

import pytest

from novaflow.aws import get_client
from novaflow.data.media import (
    MAX_IMAGE_BYTES,
    MAX_VIDEO_BYTES,
    MAX_VIDEO_SECONDS,
    MIN_IMAGE_PIXELS,
    check_media,
    image_size,
    sniff_format,
)
from novaflow.settings import load_settings

BUCKET = "novaflow-local"


def png(width: int, height: int, pad_to: int = 0) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    body += chunk(b"IEND", b"")
    return body + b"\x00" * max(0, pad_to - len(body))


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def mp4(seconds: float, *, timescale: int = 1000, moov_last: bool = True, pad_to: int = 0) -> bytes:
    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    ftyp = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    mvhd = box(
        b"mvhd", b"\x00\x00\x00\x00" + struct.pack(">IIII", 0, 0, timescale, int(seconds * timescale)) + bytes(80)
    )
    moov = box(b"moov", mvhd)
    fill = max(8, pad_to - len(ftyp) - len(moov))
    mdat = struct.pack(">I", fill) + b"mdat" + bytes(fill - 8)
    return ftyp + (mdat + moov if moov_last else moov + mdat)


def put(key: str, body: bytes) -> str:
    get_client("s3", settings=load_settings()).put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def record(kind: str, fmt: str, uri: str) -> dict:
    block = {kind: {"format": fmt, "source": {"s3Location": {"uri": uri, "bucketOwner": "123456789012"}}}}
    return {
        "schemaVersion": "bedrock-conversation-2024",
        "messages": [
            {"role": "user", "content": [{"text": "Describe"}, block]},
            {"role": "assistant", "content": [{"text": "Done."}]},
        ],
    }


def verdict(kind: str, fmt: str, body: bytes, key: str) -> tuple[list[str], list[str]]:
    uri = put(key, body)
    report = check_media([(1, record(kind, fmt, uri))], get_client("s3", settings=load_settings()), "train.jsonl")
    return [r.reason for r in report.rejected], report.notes


@pytest.mark.parametrize(
    ("name", "size", "accepted"),
    [("under", 5 * 1024 * 1024, True), ("at", MAX_IMAGE_BYTES, True), ("over", MAX_IMAGE_BYTES + 1, False)],
)
def test_image_file_size_limit(aws, name: str, size: int, accepted: bool) -> None:
    reasons, notes = verdict("image", "png", png(100, 100, pad_to=size), f"media/{name}.png")
    assert notes == []
    assert reasons == (
        [] if accepted else [f"image s3://{BUCKET}/media/{name}.png is {size} bytes, over the 10 MB limit"]
    )


@pytest.mark.parametrize(
    ("name", "size", "accepted"),
    [("under", 20 * 1024 * 1024, True), ("at", MAX_VIDEO_BYTES, True), ("over", MAX_VIDEO_BYTES + 1, False)],
)
def test_video_file_size_limit(aws, name: str, size: int, accepted: bool) -> None:
    reasons, notes = verdict("video", "mp4", mp4(5, pad_to=size), f"media/{name}.mp4")
    assert notes == []
    assert reasons == (
        [] if accepted else [f"video s3://{BUCKET}/media/{name}.mp4 is {size} bytes, over the 50 MB limit"]
    )


@pytest.mark.parametrize(
    ("seconds", "accepted"), [(MAX_VIDEO_SECONDS - 1, True), (MAX_VIDEO_SECONDS, True), (MAX_VIDEO_SECONDS + 1, False)]
)
def test_video_duration_limit(aws, seconds: int, accepted: bool) -> None:
    reasons, _ = verdict("video", "mp4", mp4(seconds), f"media/clip{seconds}.mp4")
    expected = f"video s3://{BUCKET}/media/clip{seconds}.mp4 lasts {seconds} s, over the 90 s limit"
    assert reasons == ([] if accepted else [expected])


def test_video_duration_is_read_when_moov_comes_first_or_uses_another_timescale(aws) -> None:
    assert verdict("video", "mp4", mp4(120, moov_last=False), "media/front.mp4")[0] != []
    assert verdict("video", "mov", mp4(30, timescale=600), "media/slow.mov")[0] == []


def test_image_signature_must_match_its_declared_format(aws) -> None:
    assert verdict("image", "png", png(100, 100), "media/ok.png") == ([], [])
    reasons, _ = verdict("image", "png", jpeg(100, 100), "media/actually.png")
    assert reasons == [f"s3://{BUCKET}/media/actually.png is a jpeg file, which does not match its format 'png'"]


@pytest.mark.parametrize(
    ("width", "height", "accepted"),
    [(100, 100, True), (10, 100, False), (100, 10, False), (MIN_IMAGE_PIXELS, MIN_IMAGE_PIXELS, True)],
)
def test_image_dimensions_minimum(aws, width: int, height: int, accepted: bool) -> None:
    for fmt, body in (("png", png(width, height)), ("jpeg", jpeg(width, height))):
        reasons, _ = verdict("image", fmt, body, f"media/{width}x{height}.{fmt}")
        expected = f"image s3://{BUCKET}/media/{width}x{height}.{fmt} is {width}x{height} px, below the minimum"
        assert (reasons == []) is accepted
        assert accepted or reasons[0].startswith(expected)


def test_unreadable_objects_are_notes_not_rejections(aws) -> None:
    reasons, notes = verdict("image", "png", b"not an image at all", "media/garbage.png")
    assert reasons == []
    assert notes == [
        f"row 1 messages[0].content[1].image: not checked: s3://{BUCKET}/media/garbage.png: unknown file signature"
    ]
    missing = check_media(
        [(3, record("image", "png", f"s3://{BUCKET}/media/missing.png"))],
        get_client("s3", settings=load_settings()),
        "t",
    )
    assert missing.rejected == []
    assert missing.notes == [
        f"row 3 messages[0].content[1].image: not checked: cannot read s3://{BUCKET}/media/missing.png (404)"
    ]


def test_each_object_is_read_once_and_rows_name_their_field(aws) -> None:
    uri = put("media/shared.png", png(10, 10))
    rows = [(n, record("image", "png", uri)) for n in (1, 2, 3)]
    report = check_media(rows, get_client("s3", settings=load_settings()), "train.jsonl")
    assert report.checked == 1
    assert [(r.row, r.field) for r in report.rejected] == [(n, "messages[0].content[1].image") for n in (1, 2, 3)]


def test_signatures_and_sizes_of_each_supported_format() -> None:
    assert sniff_format(b"GIF89a" + struct.pack("<HH", 40, 30)) == "gif"
    assert image_size(b"GIF89a" + struct.pack("<HH", 40, 30), "gif") == (40, 30)
    webp = b"RIFF\x00\x00\x00\x00WEBPVP8X" + bytes(8) + (39).to_bytes(3, "little") + (29).to_bytes(3, "little")
    assert sniff_format(webp) == "webp" and image_size(webp, "webp") == (40, 30)
    assert sniff_format(b"\x1a\x45\xdf\xa3\x93\x42\x82\x88matroska") == "mkv"
    assert sniff_format(b"\x1a\x45\xdf\xa3\x93\x42\x82\x84webm") == "webm"
    assert sniff_format(b"%PDF-1.7\n") == "pdf"
    assert sniff_format(b"\x00\x00\x00\x14ftypqt  ") == "mov"


def test_dry_run_lists_media_problems_and_submits_nothing(aws) -> None:
    from novaflow.jobs.dryrun import dry_run
    from novaflow.jobs.spec import JobSpec

    good, small = put("media/good.png", png(64, 64)), put("media/tiny.png", png(8, 8))
    lines = [record("image", "png", good)] * 40 + [record("image", "png", small)] + [record("image", "png", good)] * 3
    body = "".join(json.dumps(r) + "\n" for r in lines)
    get_client("s3", settings=load_settings()).put_object(Bucket=BUCKET, Key="data/mm.jsonl", Body=body.encode())
    spec = JobSpec(model="nova-lite-2", method="sft_lora", train_uri=f"s3://{BUCKET}/data/mm.jsonl")
    report = dry_run(spec, simulate_iam=False, settings=load_settings())
    media = [p for p in report.problems if p.field.startswith("train row")]
    assert [(p.field, p.message) for p in media] == [
        (
            "train row 41 messages[0].content[1].image",
            f"image {small} is 8x8 px, below the minimum of {MIN_IMAGE_PIXELS} px a side",
        )
    ]
    assert report.request is None
    assert get_client("sagemaker", settings=load_settings()).list_training_jobs()["TrainingJobSummaries"] == []
