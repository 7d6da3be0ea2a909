"""Questions about documents on the default model (qwen2.5-coder-0.5b): a Chinese PDF and an
English DOCX made here, holding facts found nowhere else; ten questions, each attaching both
files (they fit the context and go in whole). Prints each answer and its citations, and how many
answers hold the fact and cite the right file and page (the issue asks for at least 8 of 10).

    python bench/document_answers.py

An evaluation, not a test: on 2026-12-03 the 0.5B model stated the fact in 10 of 10 answers but
cited the right page in 4 (it copies the number of the prompt's example; see docs/documents.md).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import start_server, stop_server  # noqa: E402
from tests.doc_files import make_docx, make_pdf  # noqa: E402

TOWN = [
    "青石镇位于云岭山脚下，镇上共有四千二百名居民。现任镇长名叫柳文杰。",
    "青石镇的灯塔建于一八九七年，塔高二十三米。灯塔的守护人姓郑。",
    "每年十月，青石镇举办桂花节，最有名的小吃是桂花糯米糕。镇上的河流叫白鹭河。",
]
ORION = [
    ["Project Orion was started by the Halvorsen Institute in 2019. Its budget is 7.4 million euros."],
    ["The Orion telescope mirror has a diameter of 3.8 metres. The mirror was polished in Tromsø."],
    ["The chief engineer of Project Orion is Dr. Mira Castellanos. First light is planned for March 2027."],
]
# question, facts (any one counts), file, page
QUESTIONS = [
    ("青石镇有多少居民？", ("四千二百", "4200"), "town.pdf", 1),
    ("青石镇的灯塔建于哪一年？", ("一八九七", "1897"), "town.pdf", 2),
    ("青石镇的桂花节在几月举办？", ("十月", "10月"), "town.pdf", 3),
    ("青石镇的镇长叫什么名字？", ("柳文杰",), "town.pdf", 1),
    ("青石镇的河流叫什么名字？", ("白鹭河",), "town.pdf", 3),
    ("What is the budget of Project Orion?", ("7.4",), "orion.docx", 1),
    ("What is the diameter of the Orion mirror?", ("3.8",), "orion.docx", 2),
    ("Where was the Orion mirror polished?", ("Tromsø", "Tromso"), "orion.docx", 2),
    ("Who is the chief engineer of Project Orion?", ("Castellanos",), "orion.docx", 3),
    ("When is first light planned for Project Orion?", ("2027",), "orion.docx", 3),
]


def ask_all(url: str) -> int:
    client = httpx.Client(base_url=url, timeout=600)
    files = {}
    for name, data in (("town.pdf", make_pdf(TOWN)), ("orion.docx", make_docx(ORION))):
        r = client.post("/api/files", files={"file": (name, data)})
        r.raise_for_status()
        files[name] = r.json()["id"]
    right = facts_right = 0
    for question, facts, name, page in QUESTIONS:
        cid = client.post("/api/conversations", json={"settings": {"temperature": 0, "max_tokens": 80}}).json()["id"]
        body = {"content": question, "file_ids": list(files.values()), "stream": False}
        message = client.post(f"/api/conversations/{cid}/messages", json=body).json()["message"]
        has_fact = any(f in message["content"] for f in facts)
        cites = {(c["file_name"], c["page"]) for c in message["citations"]}
        ok = has_fact and (name, page) in cites
        right += ok
        facts_right += has_fact
        print(f"{'OK ' if ok else 'BAD'} {question} -> {message['content']!r} cites {sorted(cites)}")
    print(f"{right}/10 answers hold the fact and cite the right file and page ({facts_right}/10 hold the fact)")
    return right


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), None, "--n-ctx", "4096")
        try:
            return 0 if ask_all(server.url) >= 8 else 1
        finally:
            stop_server(server)


if __name__ == "__main__":
    sys.exit(main())
