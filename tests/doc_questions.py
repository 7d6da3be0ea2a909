"""Ten questions about two documents made here (a Chinese PDF and an English DOCX, holding facts
found nowhere else), asked through /api with both files attached: shared by the integration test
(tests/integration/test_document_answers.py) and the evaluation (bench/document_answers.py)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tests.doc_files import make_docx, make_pdf

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


@dataclass(frozen=True)
class Answer:
    conversation_id: str
    question: str
    content: str
    cites: list[tuple[str, int]]  # (file name, page) of each citation
    markers: list[int]  # the stored citations' markers
    has_fact: bool
    right: bool  # holds the fact and cites the right file and page


def ask_all(client: httpx.Client) -> list[Answer]:
    """Upload the two files, ask the ten questions (greedy, 80 tokens), one conversation each."""
    files = {}
    for name, data in (("town.pdf", make_pdf(TOWN)), ("orion.docx", make_docx(ORION))):
        r = client.post("/api/files", files={"file": (name, data)})
        r.raise_for_status()
        files[name] = r.json()["id"]
    answers = []
    for question, facts, name, page in QUESTIONS:
        settings = {"temperature": 0, "max_tokens": 80}
        cid = client.post("/api/conversations", json={"settings": settings}).json()["id"]
        body = {"content": question, "file_ids": list(files.values()), "stream": False}
        r = client.post(f"/api/conversations/{cid}/messages", json=body)
        r.raise_for_status()
        message = r.json()["message"]
        has_fact = any(f in message["content"] for f in facts)
        cites = sorted({(c["file_name"], c["page"]) for c in message["citations"]})
        markers = [c["marker"] for c in message["citations"]]
        right = has_fact and (name, page) in cites
        answers.append(Answer(cid, question, message["content"], cites, markers, has_fact, right))
    return answers
