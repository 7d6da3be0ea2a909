"""send_bounded: a client that does not read is cut once its buffer is full; one that reads gets everything."""

import asyncio

from mingyan.api.backpressure import send_bounded

CUT = b"data: cut\n\n"


def run_body(send, n_chunks=1000, limit=4096, grace_s=0.2):
    produced, closed = [], []

    async def body():
        try:
            for i in range(n_chunks):
                produced.append(i)
                yield f"data: {i:04d}\n\n"
                await asyncio.sleep(0)
        finally:
            closed.append(True)

    ok = asyncio.run(send_bounded(body(), send, limit_bytes=limit, cut_event=CUT, grace_s=grace_s))
    return ok, produced, closed


def test_a_client_that_reads_gets_every_event_in_order():
    got = []

    async def send(message):
        got.append(message)
        await asyncio.sleep(0)

    ok, produced, closed = run_body(send)
    assert ok and closed == [True] and len(produced) == 1000
    body = b"".join(m["body"] for m in got)
    assert body == b"".join(f"data: {i:04d}\n\n".encode() for i in range(1000))
    assert got[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


def test_a_client_that_never_reads_is_cut_and_its_source_closed():
    sent = []

    async def send(message):  # the first chunk goes out, then the socket is full for good
        if sent:
            await asyncio.Event().wait()
        sent.append(message)

    ok, produced, closed = run_body(send)
    assert not ok and closed == [True]
    assert len(produced) < 1000  # generation stopped once the buffer was full
    assert len(produced) * 12 <= 4096 + 3 * 12  # the buffer, the chunk sent, the one refused, the one read
    assert len(sent) == 1  # not even the cut event got through: the connection is closed


def test_a_slow_client_that_reads_again_gets_the_cut_event_and_a_complete_response():
    sent = []

    async def send(message):
        if len(sent) == 1 and message["body"] != CUT:
            await asyncio.sleep(3600)  # stuck until the cut cancels this send
        sent.append(message)

    ok, _, closed = run_body(send, grace_s=5)
    assert not ok and closed == [True]
    assert [m["body"] for m in sent[1:]] == [CUT, b""] and sent[-1]["more_body"] is False
