"""What makes two requests "the same" for Idempotency-Key, and what a held key answers."""

from api.idempotency import decide, fingerprint


def test_fingerprint_covers_method_path_query_and_body():
    base = fingerprint("POST", "/api/v1/runs/1/status?", b'{"status":"running"}')
    assert base == fingerprint("POST", "/api/v1/runs/1/status?", b'{"status":"running"}')
    others = {
        fingerprint("PUT", "/api/v1/runs/1/status?", b'{"status":"running"}'),
        fingerprint("POST", "/api/v1/runs/2/status?", b'{"status":"running"}'),
        fingerprint("POST", "/api/v1/runs/1/status?x=1", b'{"status":"running"}'),
        fingerprint("POST", "/api/v1/runs/1/status?", b'{"status":"failed"}'),
        # Field boundaries are length-prefixed: moving bytes between parts changes the hash.
        fingerprint("POST", "/api/v1/runs/1/status?{", b'"status":"running"}'),
    }
    assert base not in others and len(others) == 5


def test_decisions():
    digest = fingerprint("POST", "/p?", b"{}")
    assert decide(stored_hash=digest, stored_state="done", request_hash=digest) == "replay"
    assert decide(stored_hash=digest, stored_state="in_progress", request_hash=digest) == (
        "in_progress"
    )
    other = fingerprint("POST", "/p?", b"[]")
    assert decide(stored_hash=digest, stored_state="done", request_hash=other) == "mismatch"
    assert decide(stored_hash=digest, stored_state="in_progress", request_hash=other) == (
        "mismatch"
    )
