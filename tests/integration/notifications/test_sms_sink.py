"""The devstack SMS sink: a stand-in HTTP SMS gateway that keeps what it is given and lists it."""

from __future__ import annotations

import asyncio
import os
import sys
from subprocess import DEVNULL

import httpx

from lotse_devstack.processes import free_port
from lotse_devstack.sms_sink import SmsSink
from tests.support.waiting import eventually

TOKEN = "sink-token-" + "x" * 24


def test_the_sink_takes_sms_with_the_right_token_refuses_bad_ones_and_lists_them() -> None:
    with SmsSink(token=TOKEN) as sink, httpx.Client() as http:
        sink.refused.add("+4915199999999")
        good = {"to": "+4915112345678", "text": "Erinnerung ✓", "sender": "Lotse", "reference": "d-1"}
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert http.post(sink.url, json=good, headers=auth).status_code == 202
        assert http.post(sink.url, json=good, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.post(sink.url, json=good).status_code == 401
        assert http.post(sink.url, json=good | {"to": "015112345678"}, headers=auth).status_code == 400
        assert http.post(sink.url, json=good | {"to": "+4915199999999"}, headers=auth).status_code == 400
        assert http.post(sink.url, json={"text": "ohne Nummer"}, headers=auth).status_code == 400
        second = good | {"to": "+4915187654321", "reference": "d-2"}
        assert http.post(sink.url, json=second, headers=auth).status_code == 202

        listed = http.get(sink.url).json()
        assert [(sms["to"], sms["reference"]) for sms in listed] == [
            ("+4915112345678", "d-1"),
            ("+4915187654321", "d-2"),
        ]
        (only,) = http.get(sink.url, params={"to": "+4915187654321"}).json()
        assert only["text"] == "Erinnerung ✓" and only["sender"] == "Lotse"
        http.delete(sink.url)
        assert http.get(sink.url).json() == [] and sink.messages() == []


async def test_the_sink_runs_as_its_own_process_with_the_token_from_the_environment() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lotse_devstack.sms_sink",
        "--port",
        str(port),
        env={**os.environ, "LOTSE_SMS_GATEWAY_TOKEN": TOKEN},
        stdout=DEVNULL,
        stderr=DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/messages"
    try:
        async with httpx.AsyncClient() as http:

            async def answering() -> bool:
                try:
                    return (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(answering, timeout=20, what="the sink to answer")
            sms = {"to": "+4915112345678", "text": "Hallo", "reference": "p-1"}
            assert (await http.post(url, json=sms)).status_code == 401
            taken = await http.post(url, json=sms, headers={"Authorization": f"Bearer {TOKEN}"})
            assert taken.status_code == 202
            assert [item["text"] for item in (await http.get(url)).json()] == ["Hallo"]
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
