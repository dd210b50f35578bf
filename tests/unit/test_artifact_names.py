"""Artifact names are display names only: validation, download file names, storage keys,
byte ranges."""

import re
from urllib.parse import unquote

import pytest

from core.artifacts import (
    clean_name,
    clean_spec,
    content_disposition,
    download_filename,
    parse_byte_range,
)
from core.errors import ConfigError, InvalidInput
from core.object_store import ArtifactSettings, LocalObjectStore, check_key, new_object_key

TRAVERSAL_NAMES = [
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/secret.txt",
    "..\\..\\windows\\system32\\drivers\\etc\\hosts",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "//server/share/x",
    "\\\\server\\share\\x",
    "．．／．．／secret.txt",  # fullwidth dots and solidus
    "‥∕secret.txt",  # two-dot leader, division slash
    "..",
    ".",
    "...",
    "foo/../../bar",
]


@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
def test_traversal_names_are_kept_as_display_names_and_never_reach_a_file_name(name):
    assert clean_name(name) == name
    filename = download_filename(name)
    assert "/" not in filename and "\\" not in filename
    assert filename not in ("", ".", "..")
    assert not filename.startswith(".")
    assert "\x00" not in filename
    header = content_disposition(name)
    assert header.startswith("attachment; ")
    ascii_part = re.search(r'filename="([^"]*)"', header).group(1)
    utf8_part = unquote(header.split("filename*=UTF-8''", 1)[1])
    for part in (ascii_part, utf8_part, unquote(utf8_part)):
        assert "/" not in part and "\\" not in part and not part.startswith(".")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model.pt", "model.pt"),
        ("runs/42/weights final.bin", "weights final.bin"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\win.ini", "win.ini"),
        ("．．／．．／secret.txt", "secret.txt"),
        ('quote"semi;colon.txt', "quote_semi_colon.txt"),
        ("..%2f..%2fetc%2fpasswd", "passwd"),
        ("100%.txt", "100%.txt"),
        ("..", "artifact"),
        ("/", "artifact"),
        ("résumé.pdf", "résumé.pdf"),
    ],
)
def test_download_file_names(name, expected):
    assert download_filename(name) == expected


def test_non_ascii_names_get_an_ascii_fallback_and_a_utf8_name():
    header = content_disposition("résumé.pdf")
    assert 'filename="r_sum_.pdf"' in header
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in header


def test_long_names_keep_their_extension():
    filename = download_filename("x" * 300 + ".tar.gz")
    assert len(filename) == 200 and filename.endswith(".gz")


@pytest.mark.parametrize(
    "name", ["", "   ", "a\x00b", "line\nbreak", "bell\x07", "evil\u202egpj.exe", "x" * 256]
)
def test_names_with_control_characters_or_out_of_bounds_are_refused(name):
    with pytest.raises(InvalidInput):
        clean_name(name)


def test_specs_validate_type_media_type_sha256_and_metadata():
    spec = clean_spec(
        name="a",
        artifact_type=None,
        content_type="Text/Plain; charset=utf-8",
        sha256="AB" * 32,
        metadata={"path": "../../x"},
    )
    assert (spec.artifact_type, spec.content_type, spec.sha256) == ("file", "text/plain", "ab" * 32)
    assert spec.metadata == {"path": "../../x"}
    bad = [
        {"artifact_type": "../model"},
        {"content_type": "not a type"},
        {"sha256": "abc"},
        {"metadata": ["not", "an", "object"]},
        {"metadata": {"k": "nul\x00byte"}},
        {"metadata": {"nested": [{"k\x00": 1}]}},
        {"metadata": {"big": "x" * 20_000}},
    ]
    for change in bad:
        fields = {"name": "a", "artifact_type": None, "content_type": None, "sha256": None}
        fields["metadata"] = None
        fields.update(change)
        with pytest.raises(InvalidInput):
            clean_spec(**fields)


def test_keys_are_generated_and_checked_strictly(tmp_path):
    key = new_object_key()
    assert check_key(key) == key and key.startswith("run-artifacts/")
    store = LocalObjectStore(tmp_path / "artifacts")
    assert store.path_of(key).is_relative_to(tmp_path / "artifacts")
    for bad in [
        "../x",
        "run-artifacts/../../etc/passwd",
        "/etc/passwd",
        "run-artifacts/ab/" + "0" * 31 + "/",
        "run-artifacts/ab/" + "0" * 32 + "\x00",
        "run-artifacts\\ab\\" + "0" * 32,
        "RUN/ab/" + "0" * 32,
    ]:
        with pytest.raises(InvalidInput):
            store.path_of(bad)


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=90-", 100, (90, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-1000", 100, (0, 99)),
        ("bytes=50-5000", 100, (50, 99)),
        ("bytes=0-0,5-9", 100, None),  # several ranges: the whole file
        ("items=0-9", 100, None),
        ("bytes=9-0", 100, None),
        ("bytes=a-b", 100, None),
        ("bytes=-", 100, None),
        ("bytes=²-3", 100, None),
    ],
)
def test_byte_ranges(header, size, expected):
    assert parse_byte_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0)]
)
def test_unsatisfiable_ranges(header, size):
    with pytest.raises(ValueError):
        parse_byte_range(header, size)


def test_storage_settings_come_from_the_environment():
    assert ArtifactSettings.from_env({}).store == "local"
    s3 = ArtifactSettings.from_env(
        {
            "ETP_S3_BUCKET": "b",
            "ETP_ARTIFACT_MAX_BYTES": "1024",
            "ETP_S3_SECRET_ACCESS_KEY": "hunter2",
        }
    )
    assert (s3.store, s3.max_bytes, s3.s3_bucket) == ("s3", 1024, "b")
    assert "hunter2" not in repr(s3) and s3.s3_secret_access_key.get() == "hunter2"
    for bad in (
        {"ETP_ARTIFACT_STORE": "ftp"},
        {"ETP_ARTIFACT_STORE": "s3"},
        {"ETP_ARTIFACT_MAX_BYTES": "-1"},
        {"ETP_S3_PRESIGN_EXPIRES_S": "soon"},
    ):
        with pytest.raises(ConfigError):
            ArtifactSettings.from_env(bad)
