"""The fake server on its own: the control endpoint, the models list, and running as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import openai

from agents.llm.client import OpenAIModel
from agents.llm.config import EndpointConfig
from agents.types import LLMRequest
from tests.support.fake_openai import CHAT_PATH, MODELS_PATH
from tests.support.processes import REPO

REQUEST = LLMRequest(purpose="step", messages=({"role": "user", "content": "Step 2 of 3: Tidy up"},))


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_models_list_through_the_sdk(fake_openai):
    client = openai.OpenAI(base_url=fake_openai.url, api_key="k", max_retries=0)
    assert [m.id for m in client.models.list()] == ["fake-model"]
    assert fake_openai.snapshot()["counts"] == {}  # only the model endpoints are counted


def test_control_endpoint_scripts_and_reports(fake_openai):
    root = fake_openai.url.removesuffix("/v1")
    _post(f"{root}/_control/script", {"replies": [{"content": "scripted over HTTP"}]})
    model = OpenAIModel(EndpointConfig(base_url=fake_openai.url, api_key="k", model="m", max_retries=0))

    assert model.complete(REQUEST).content == "scripted over HTTP"
    assert model.complete(REQUEST).content == "done: Tidy up"  # the queue is empty again

    report = _get(f"{root}/_control/requests")
    assert report["counts"] == {CHAT_PATH: 2}
    assert [r["body"]["messages"] for r in report["requests"]] == [list(REQUEST.messages)] * 2
    _post(f"{root}/_control/reset", {})
    assert _get(f"{root}/_control/requests") == {"counts": {}, "requests": []}


def test_runs_as_a_subprocess_with_a_script_file(tmp_path):
    script = tmp_path / "replies.json"
    script.write_text(json.dumps({"chat": [{"content": "from the script"}], "embeddings": [{"embeddings": [[0.5]]}]}))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_openai", "--port", "0", "--script", str(script)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        model = OpenAIModel(EndpointConfig(base_url=url, api_key="k", model="m", max_retries=0))

        assert model.complete(REQUEST).content == "from the script"
        assert _get(url.removesuffix("/v1") + "/_control/requests")["counts"] == {CHAT_PATH: 1}
        assert _get(url + MODELS_PATH.removeprefix("/v1"))["data"][0]["id"] == "fake-model"
    finally:
        process.terminate()
        process.wait(timeout=10)
