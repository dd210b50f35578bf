"""Artifacts through the API, on the real filesystem store and on an S3-compatible server
(moto's, over HTTP): streaming uploads, limits, digests, the path traversal corpus,
downloads with ranges, pre-signed transfers, delete and approve."""

import asyncio
import contextlib
import hashlib
import re
import socket
import uuid
from pathlib import Path

import boto3
import httpx
import orjson
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from api.artifacts import HIGH_WATER_BYTES, StreamingBody, install_upload_streaming
from core.errors import InvalidInput, PayloadTooLarge
from core.object_store import S3_PART_BYTES, LocalObjectStore, S3ObjectStore, new_object_key
from tests.integration.helpers import add_member, create_project, register
from tests.unit.test_artifact_names import TRAVERSAL_NAMES

API = "/api/v1"
S3_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def make_run(app, owner=None):
    owner = owner or await register(app)
    project = await create_project(owner)
    exp = await owner.json(
        "POST", f"{API}/projects/{project['id']}/experiments", 201, json={"name": "e"}
    )
    run = await owner.json("POST", f"{API}/experiments/{exp['id']}/runs", 201, json={"name": "r"})
    return owner, project, run


async def upload(user, run_id, data, expect=201, query=None, headers=None):
    response = await user.call(
        "POST",
        f"{API}/runs/{run_id}/artifacts",
        data=data,
        query_string={"name": "file.bin"} if query is None else query,
        headers={"Content-Type": "application/octet-stream", **(headers or {})},
    )
    body = await response.get_json()
    assert response.status_code == expect, body
    return body


def multipart(filename: str, data: bytes, **fields: str) -> tuple[bytes, str]:
    boundary = f"etp{uuid.uuid4().hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def files_under(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


# The filesystem store ---------------------------------------------------------------------------


async def test_upload_list_and_download_with_ranges(app, settings):
    owner, _, run = await make_run(app)
    data = bytes(range(256)) * 1000
    art = await upload(
        owner,
        run["id"],
        data,
        query={"name": "weights v1.bin", "type": "model", "metadata": '{"epoch": 3}'},
    )
    assert art["status"] == "ready" and art["storage"] == "local" and art["type"] == "model"
    assert art["size_bytes"] == len(data) and art["sha256"] == hashlib.sha256(data).hexdigest()
    assert art["metadata"] == {"epoch": 3} and art["content_type"] == "application/octet-stream"
    stored = list((Path(settings.data_dir) / "artifacts").rglob("*"))
    [path] = [p for p in stored if p.is_file()]
    assert path.read_bytes() == data and re.fullmatch(r"[0-9a-f]{32}", path.name)
    listed = await owner.json("GET", f"{API}/runs/{run['id']}/artifacts")
    assert [a["id"] for a in listed["items"]] == [art["id"]]
    content = f"{API}/artifacts/{art['id']}/content"
    full = await owner.call("GET", content)
    assert full.status_code == 200 and await full.get_data() == data
    assert full.headers["Content-Disposition"].startswith('attachment; filename="weights v1.bin"')
    assert full.headers["Accept-Ranges"] == "bytes"
    etag = full.headers["ETag"]
    part = await owner.call("GET", content, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and await part.get_data() == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    tail = await owner.call("GET", content, headers={"Range": "bytes=-10", "If-Range": etag})
    assert tail.status_code == 206 and await tail.get_data() == data[-10:]
    stale = await owner.call("GET", content, headers={"Range": "bytes=0-1", "If-Range": '"x"'})
    assert stale.status_code == 200 and len(await stale.get_data()) == len(data)
    beyond = await owner.call("GET", content, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    body, content_type = multipart("notes.txt", b"hello\n", type="notes")
    art2 = await upload(owner, run["id"], body, query={}, headers={"Content-Type": content_type})
    assert (art2["name"], art2["type"], art2["content_type"]) == (
        "notes.txt",
        "notes",
        "text/plain",
    )
    assert await (await owner.call("GET", f"{API}/artifacts/{art2['id']}/content")).get_data() == (
        b"hello\n"
    )
    page = await owner.json("GET", f"{API}/runs/{run['id']}/artifacts?limit=1")
    rest = await owner.json(
        "GET", f"{API}/runs/{run['id']}/artifacts?limit=1&cursor={page['next_cursor']}"
    )
    assert [a["id"] for a in page["items"] + rest["items"]] == [art2["id"], art["id"]]
    await owner.json("GET", f"{API}/artifacts/{art['id']}/download-url", 409)  # local store


async def test_the_traversal_corpus_never_touches_a_file_outside_the_store(app, settings, tmp_path):
    owner, _, run = await make_run(app)
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    for sentinel in (tmp_path / "secret.txt", data_dir / "secret.txt", data_dir / "passwd"):
        sentinel.write_text("do not touch")
    before = files_under(tmp_path)
    created = []
    for name in TRAVERSAL_NAMES:
        metadata = orjson.dumps({"path": name, name: [name]}).decode()
        art = await upload(owner, run["id"], b"payload", query={"name": name, "metadata": metadata})
        assert art["name"] == name  # a display name, kept as given
        created.append(art)
        body, content_type = multipart(name, b"payload", metadata='{"dir": "../../"}')
        created.append(
            await upload(owner, run["id"], body, query={}, headers={"Content-Type": content_type})
        )
    for raw in ("%2e%2e%2f%2e%2e%2fsecret.txt", "..%5c..%5csecret.txt", "%2fetc%2fpasswd"):
        response = await owner.call(
            "POST", f"{API}/runs/{run['id']}/artifacts?name={raw}", data=b"payload"
        )
        assert response.status_code == 201
        created.append(await response.get_json())
    for bad in ("a\x00b", "../\x00/x"):
        await upload(owner, run["id"], b"payload", 422, query={"name": bad})
    await upload(owner, run["id"], b"x", 422, query={"name": "ok", "metadata": '{"k": "\\u0000"}'})
    after = files_under(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing overwritten
    new = sorted(set(after) - set(before))
    assert len(new) == len(created)
    assert all(
        re.fullmatch(r"data/artifacts/run-artifacts/[0-9a-f]{2}/[0-9a-f]{32}", p) for p in new
    )
    for art in created:
        response = await owner.call("GET", f"{API}/artifacts/{art['id']}/content")
        assert await response.get_data() == b"payload"
        disposition = response.headers["Content-Disposition"]
        filename = re.search(r'filename="([^"]*)"', disposition).group(1)
        assert "/" not in filename and "\\" not in filename and not filename.startswith(".")


async def test_a_sha256_mismatch_is_refused_and_nothing_is_kept(app, settings, db):
    owner, _, run = await make_run(app)
    data = b"x" * 3_000_000
    error = await upload(owner, run["id"], data, 422, query={"name": "f", "sha256": "0" * 64})
    assert error["error"]["details"]["actual"] == hashlib.sha256(data).hexdigest()
    assert await db.fetchval("SELECT count(*) FROM artifacts") == 0
    assert files_under(Path(settings.data_dir) / "artifacts") == {}  # no .part left behind
    good = hashlib.sha256(data).hexdigest().upper()
    assert (await upload(owner, run["id"], data, query={"name": "f", "sha256": good}))[
        "sha256"
    ] == (good.lower())


async def test_the_size_limit_is_enforced_while_streaming(app, settings, db, monkeypatch, tmp_path):
    monkeypatch.setenv("ETP_ARTIFACT_MAX_BYTES", str(256 * 1024))
    owner, _, run = await make_run(app)
    honest = await upload(owner, run["id"], b"x" * (1024 * 1024), 413)
    assert honest["error"]["details"]["limit_bytes"] == 256 * 1024
    # A client announcing less than it sends is cut off by the running count.
    lying = await upload(
        owner, run["id"], b"x" * (1024 * 1024), 413, headers={"Content-Length": "10"}
    )
    assert lying["error"]["details"] == {"limit_bytes": 256 * 1024}
    assert await db.fetchval("SELECT count(*) FROM artifacts") == 0
    assert files_under(Path(settings.data_dir) / "artifacts") == {}
    assert (await upload(owner, run["id"], b"x" * 256 * 1024))["size_bytes"] == 256 * 1024
    consumed = []

    async def chunks():
        for i in range(1000):
            consumed.append(i)
            yield b"y" * 100

    store = LocalObjectStore(tmp_path / "store")
    with pytest.raises(PayloadTooLarge):
        await store.write(
            new_object_key(), chunks(), max_bytes=1000, expected_sha256=None, content_type="x/y"
        )
    assert len(consumed) == 11 and files_under(tmp_path / "store") == {}


async def test_delete_is_for_editors_and_approval_for_owners_both_audited(app, settings, db):
    owner, project, run = await make_run(app)
    editor, viewer, stranger = await register(app), await register(app), await register(app)
    await add_member(owner, project["id"], editor, "editor")
    await add_member(owner, project["id"], viewer, "viewer")
    await upload(viewer, run["id"], b"v", 403)
    art = await upload(editor, run["id"], b"data")
    path = f"{API}/artifacts/{art['id']}"
    await stranger.json("GET", path, 404)
    await viewer.json("GET", path)
    await viewer.json("DELETE", path, 403)
    await editor.json("POST", f"{path}/approve", 403)
    approved = await owner.json("POST", f"{path}/approve")
    assert approved["approved_by"] == owner.id and approved["approved_at"]
    assert (await owner.json("POST", f"{path}/approve"))["approved_at"] == approved["approved_at"]
    response = await editor.call("DELETE", path)
    assert response.status_code == 204
    await owner.json("GET", path, 404)
    assert files_under(Path(settings.data_dir) / "artifacts") == {}
    actions = await db.fetch(
        "SELECT action, actor_role FROM audit_events WHERE entity_type = 'artifact' ORDER BY id"
    )
    assert [(a["action"], a["actor_role"]) for a in actions] == [
        ("artifact.created", "editor"),
        ("artifact.approved", "owner"),
        ("artifact.deleted", "editor"),
    ]
    for status in ("running", "succeeded", "archived"):
        await owner.json("POST", f"{API}/runs/{run['id']}/status", json={"status": status})
    await upload(owner, run["id"], b"late", 409)


async def test_the_streaming_body_holds_at_most_the_high_water_mark():
    body = StreamingBody(None, None)
    body.append(b"a" * (HIGH_WATER_BYTES // 2))
    room = asyncio.create_task(body.wait_for_room())
    await asyncio.sleep(0)
    assert room.done()
    body.append(b"b" * HIGH_WATER_BYTES)
    blocked = asyncio.create_task(body.wait_for_room())
    await asyncio.sleep(0.01)
    assert not blocked.done()  # the receiver waits instead of buffering more
    assert len(await body.__anext__()) == HIGH_WATER_BYTES * 3 // 2
    await asyncio.wait_for(blocked, 1)


@pytest.fixture
async def served(settings, ray_instance):
    """The app behind a real Hypercorn server, with upload streaming installed."""
    from api.app import create_app

    app = create_app(settings)
    install_upload_streaming(app)
    config = Config()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "WARNING"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as probe:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                if (await probe.get("/healthz")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
    yield app, base
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_uploads_past_the_app_body_limit_stream_over_real_http(served):
    app, base = served
    owner, _, run = await make_run(app)
    size = app.config["MAX_CONTENT_LENGTH"] + 5 * 1024 * 1024
    block = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB
    data = (block * (size // len(block) + 1))[:size]

    async def chunked():
        for start in range(0, len(data), 256 * 1024):
            yield data[start : start + 256 * 1024]

    url = f"{base}{API}/runs/{run['id']}/artifacts"
    async with httpx.AsyncClient(headers=owner.auth, timeout=60) as client:
        sized = await client.post(url, params={"name": "big.bin"}, content=data)
        assert sized.status_code == 201, sized.text
        streamed = await client.post(url, params={"name": "chunked.bin"}, content=chunked())
        assert streamed.status_code == 201, streamed.text
        for art in (sized.json(), streamed.json()):
            assert art["size_bytes"] == size
            assert art["sha256"] == hashlib.sha256(data).hexdigest()
        got = await client.get(
            f"{base}{API}/artifacts/{sized.json()['id']}/content",
            headers={"Range": f"bytes={size - 100}-"},
        )
        assert got.status_code == 206 and got.content == data[-100:]


# The S3 store ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint):
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **S3_KEYS)
    name = f"etp-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return client, name


@pytest.fixture
def s3_env(monkeypatch, s3_endpoint, s3_bucket):
    _, bucket = s3_bucket
    monkeypatch.setenv("ETP_ARTIFACT_STORE", "s3")
    monkeypatch.setenv("ETP_S3_BUCKET", bucket)
    monkeypatch.setenv("ETP_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("ETP_S3_ACCESS_KEY_ID", S3_KEYS["aws_access_key_id"])
    monkeypatch.setenv("ETP_S3_SECRET_ACCESS_KEY", S3_KEYS["aws_secret_access_key"])
    return s3_bucket


def objects(client, bucket):
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


async def test_the_s3_store_over_http(s3_bucket):
    client, bucket = s3_bucket
    store = S3ObjectStore(client, bucket=bucket)
    big = hashlib.sha256(b"s3").digest() * ((S3_PART_BYTES * 2 + 12345) // 32)

    async def chunks(data, size=1024 * 1024):
        for start in range(0, len(data), size):
            yield data[start : start + size]

    small_key, big_key = new_object_key(), new_object_key()
    stored = await store.write(
        small_key, chunks(b"hello"), max_bytes=10, expected_sha256=None, content_type="text/plain"
    )
    assert stored.size_bytes == 5 and await store.size_of(small_key) == 5
    stored = await store.write(
        big_key,
        chunks(big),
        max_bytes=len(big),
        expected_sha256=hashlib.sha256(big).hexdigest(),
        content_type="application/octet-stream",
    )
    assert stored.size_bytes == len(big)
    middle = b"".join([c async for c in store.read(big_key, start=S3_PART_BYTES - 5, length=10)])
    assert middle == big[S3_PART_BYTES - 5 : S3_PART_BYTES + 5]
    assert b"".join([c async for c in store.read(big_key)]) == big
    for max_bytes, sha in ((len(big) - 1, None), (len(big), "0" * 64)):
        key = new_object_key()
        with pytest.raises(PayloadTooLarge if sha is None else InvalidInput):
            await store.write(
                key, chunks(big), max_bytes=max_bytes, expected_sha256=sha, content_type="x/y"
            )
        assert await store.size_of(key) is None
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")  # all aborted
    assert sorted(objects(client, bucket)) == sorted([small_key, big_key])
    await store.delete(small_key)
    assert await store.size_of(small_key) is None


async def test_s3_artifacts_through_the_api_and_pre_signed_urls(app, s3_env):
    client, bucket = s3_env
    owner, _, run = await make_run(app)
    data = b"0123456789" * 1000
    art = await upload(owner, run["id"], data, query={"name": "../s3/../model.bin"})
    assert art["storage"] == "s3" and objects(client, bucket) == [(await _key(app, art["id"]))]
    content = f"{API}/artifacts/{art['id']}/content"
    part = await owner.call("GET", content, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and await part.get_data() == data[10:20]
    link = await owner.json("GET", f"{API}/artifacts/{art['id']}/download-url")
    async with httpx.AsyncClient(timeout=30) as http:
        fetched = await http.get(link["url"])
        assert fetched.content == data
        assert fetched.headers["Content-Disposition"].startswith('attachment; filename="model.bin"')
        payload = b"uploaded directly" * 100
        started = await owner.json(
            "POST",
            f"{API}/runs/{run['id']}/artifacts/uploads",
            201,
            json={
                "name": "direct.txt",
                "content_type": "text/plain",
                "sha256": hashlib.sha256(payload).hexdigest(),
            },
        )
        assert started["artifact"]["status"] == "pending"
        upload_req = started["upload"]
        put = await http.request(
            upload_req["method"], upload_req["url"], content=payload, headers=upload_req["headers"]
        )
        assert put.status_code == 200, put.text
        done = await owner.json("POST", f"{API}/artifacts/{started['artifact']['id']}/complete")
        assert done["status"] == "ready" and done["size_bytes"] == len(payload)
        wrong = await owner.json(
            "POST",
            f"{API}/runs/{run['id']}/artifacts/uploads",
            201,
            json={"name": "bad.txt", "sha256": "1" * 64},
        )
        await http.put(wrong["upload"]["url"], content=b"other", headers=wrong["upload"]["headers"])
        await owner.json("POST", f"{API}/artifacts/{wrong['artifact']['id']}/complete", 422)
    assert await _key(app, wrong["artifact"]["id"]) not in objects(client, bucket)
    await owner.json("DELETE", f"{API}/artifacts/{art['id']}", 204)
    assert objects(client, bucket) == [await _key(app, done["id"])]


async def _key(app, artifact_id):
    from api.state import Services

    state: Services = app.app.extensions["etp"]
    async with state.database.acquire() as conn:
        return await conn.fetchval(
            "SELECT storage_key FROM artifacts WHERE id = $1", uuid.UUID(artifact_id)
        )
