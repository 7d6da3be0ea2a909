"""/api/files over real HTTP on the fake chat engine, real SQLite and PostgreSQL: uploads of each type,
hostile files refused with a clear 4xx and nothing stored, de-duplication, quotas, download, search,
delete, and another user's files a 404 everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from mingyan.store.tables import DocumentBlob, DocumentChunk, DocumentFile, DocumentTerm
from tests.app_server import serve_app
from tests.doc_files import make_blank_pdf, make_docx, make_pdf, zip_bomb_docx

PASSWORD = "correct horse battery"
POEM = ["静夜思，李白。床前明月光，疑是地上霜。", "举头望明月，低头思故乡。"]


@dataclass
class Clients:
    alice: httpx.Client
    bob: httpx.Client
    store: ConversationStore


def sign_in(url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    r = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


@pytest.fixture
def clients(store: ConversationStore) -> Iterator[Clients]:
    accounts = AccountStore.open(store.db)
    accounts.users.create_user("alice", PASSWORD)
    accounts.users.create_user("bob", PASSWORD)
    settings = Settings(auto_titles=False, max_file_mb=1, max_file_pages=100, file_storage_mb=2)
    with serve_app(create_app(settings, FakeEngine(n_ctx=1024), store=store)) as url:
        yield Clients(sign_in(url, "alice"), sign_in(url, "bob"), store)


def rows(store: ConversationStore) -> dict[str, int]:
    with store.db.reads() as session:
        tables = (DocumentFile, DocumentBlob, DocumentChunk, DocumentTerm)
        return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) or 0 for t in tables}


def upload(client: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return client.post("/api/files", files={"file": (name, data, "application/octet-stream")})


def test_upload_list_get_download_search_delete(clients: Clients) -> None:
    pdf = make_pdf(POEM)
    r = upload(clients.alice, "poem.txt", pdf)  # the name says text; the content says PDF
    assert r.status_code == 201, r.text
    file = r.json()
    assert (file["kind"], file["pages"], file["name"], file["duplicate"]) == ("pdf", 2, "poem.txt", False)
    again = upload(clients.alice, "copy.pdf", pdf)
    assert again.status_code == 200 and again.json()["id"] == file["id"] and again.json()["duplicate"]
    for name, data, kind in (
        ("a.docx", make_docx([["Quarterly revenue was 12 million."]]), "docx"),
        ("b.html", b"<html><body><p>Hello page</p></body></html>", "html"),
        ("c.csv", "城市,人口\n北京,2189万\n上海,2487万\n".encode(), "csv"),
        ("d.md", b"# Title\n\n- one\n- two\n", "md"),
    ):
        r = upload(clients.alice, name, data)
        assert r.status_code == 201 and r.json()["kind"] == kind, r.text
    listed = clients.alice.get("/api/files").json()
    assert len(listed["data"]) == 5 and listed["quota_bytes"] == 2 << 20 and listed["used_bytes"] > len(pdf)
    assert clients.alice.get(f"/api/files/{file['id']}").json()["sha256"] == file["sha256"]
    download = clients.alice.get(f"/api/files/{file['id']}/content")
    assert download.content == pdf and download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment")
    hits = clients.alice.get("/api/files/search", params={"q": "故乡"}).json()["data"]
    assert hits[0]["file_id"] == file["id"] and hits[0]["page"] == 2 and "低头思故乡" in hits[0]["text"]
    assert hits[0]["text"] == POEM[1][hits[0]["start"] : hits[0]["end"]]
    hits = clients.alice.get("/api/files/search", params={"q": "城市 人口 北京", "mode": "bm25"}).json()["data"]
    assert hits[0]["file_name"] == "c.csv"
    assert clients.alice.delete(f"/api/files/{file['id']}").status_code == 204
    assert clients.alice.get(f"/api/files/{file['id']}").status_code == 404
    assert clients.alice.get("/api/files/search", params={"q": "故乡"}).json()["data"] == []
    assert rows(clients.store)["document_files"] == 4


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("bad.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\ntrailer <<>>", 422, "malformed_file"),
        ("bomb.docx", zip_bomb_docx(16), 413, "archive_too_large"),
        ("big.txt", b"a" * ((1 << 20) + 10), 413, "file_too_large"),
        ("huge.txt", b"a" * (3 << 20), 413, "request_too_large"),
        ("image.png", b"\x89PNG\r\n\x1a\n" + bytes(100), 415, "unsupported_file_type"),
        ("long.pdf", make_blank_pdf(150), 413, "too_many_pages"),
        ("empty.txt", b"", 415, "unsupported_file_type"),
    ],
)
def test_hostile_files_get_a_clear_error_and_leave_nothing(
    clients: Clients, name: str, data: bytes, status: int, code: str
) -> None:
    r = upload(clients.alice, name, data)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert set(rows(clients.store).values()) == {0}
    assert clients.alice.get("/api/files").json()["data"] == []


def test_the_storage_quota_and_unknown_fields(clients: Clients) -> None:
    big = "文本内容。".encode() * 60_000  # 900 kB of text each
    assert upload(clients.alice, "one.txt", big + b"1").status_code == 201
    assert upload(clients.alice, "two.txt", big + b"2").status_code == 201
    r = upload(clients.alice, "three.txt", big + b"3")
    assert r.status_code == 413 and r.json()["error"]["code"] == "storage_quota_exceeded"
    assert rows(clients.store)["document_files"] == 2
    assert upload(clients.bob, "three.txt", big + b"3").status_code == 201  # per user
    r = clients.alice.post("/api/files", files={"file": ("a.txt", b"hi")}, data={"purpose": "assistants"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"


def test_another_users_files_are_404_on_every_route(clients: Clients) -> None:
    file = upload(clients.alice, "poem.pdf", make_pdf(POEM)).json()
    fid = file["id"]
    for method, path in (
        ("GET", f"/api/files/{fid}"),
        ("GET", f"/api/files/{fid}/content"),
        ("DELETE", f"/api/files/{fid}"),
    ):
        r = clients.bob.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        missing = clients.bob.request(method, path.replace(fid, "0" * 32))
        assert r.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert clients.bob.get("/api/files").json()["data"] == []
    assert clients.bob.get("/api/files/search", params={"q": "故乡"}).json()["data"] == []
    assert clients.bob.get("/api/files/search", params={"q": "故乡", "file_id": fid}).json()["data"] == []
    # Bob uploading the same bytes gets his own copy, not Alice's file.
    mine = upload(clients.bob, "poem.pdf", make_pdf(POEM)).json()
    assert mine["id"] != fid and not mine["duplicate"]
    assert clients.alice.get(f"/api/files/{fid}").status_code == 200
