"""Stand-ins for the export tests: a llama.cpp folder whose converter misbehaves on request, and a stubbed Hub.

``fake_llama_cpp(folder)`` writes a folder that ``helpers.llama_cpp.problem`` and Unsloth accept as llama.cpp
(``llama-quantize`` prints its usage; ``src/``, ``ggml/``, ``common/`` exist), whose ``convert_hf_to_gguf.py`` does
what ``$FAKE_CONVERT`` says: ``ok`` writes a small valid GGUF file, ``reject`` writes half a file and exits 3 as the
real converter does on a model it refuses, ``enospc`` writes half a file and dies with "No space left on device".

Run as a script, it is ``course ARGS`` with huggingface_hub's HTTP layer answered by a stub (no network)::

    python tests/export_fakes.py REQUESTS.json LOG.txt export --push-to-hub learner/tiny ...

Every request is recorded in REQUESTS.json (method, path, the files a commit adds, and whether the
Authorization header carried $HF_TOKEN, never the header itself); every log record, at DEBUG, goes to LOG.txt.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

CONVERTER = r"""
import os, struct, sys

args = sys.argv[1:]
out = args[args.index("--outfile") + 1]
mode = os.environ.get("FAKE_CONVERT", "ok")
if mode == "ok":  # a valid GGUF v3 file: no tensors, one key (general.architecture = llama)
    key, value = b"general.architecture", b"llama"
    with open(out, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
                + struct.pack("<IQ", 8, len(value)) + value)
    sys.exit(0)
with open(out, "wb") as f:
    f.write(b"GGUF" + b"\0" * 4096)  # the first part of a file, then the converter dies
if mode == "enospc":
    sys.stderr.write(f"OSError: [Errno 28] No space left on device: {out!r}\n")
    sys.exit(1)
sys.stderr.write("NotImplementedError: BPE pre-tokenizer was not recognized - update get_vocab_base_pre()\n")
sys.exit(3)
"""


def fake_llama_cpp(folder: Path) -> Path:
    """A llama.cpp folder that passes every check; its converter obeys $FAKE_CONVERT (ok, reject, enospc)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("src", "ggml", "common", "conversion", "gguf-py"):
        (folder / name).mkdir(exist_ok=True)
    (folder / "convert_lora_to_gguf.py").write_text("raise SystemExit('not used')\n")
    (folder / "convert_hf_to_gguf.py").write_text(CONVERTER)
    quantize = folder / "llama-quantize"
    quantize.write_text(
        "#!/bin/sh\necho 'usage: llama-quantize [--help] model-f32.gguf [model-quant.gguf] type'\n"
        '[ "$1" = --help ] && exit 0\nexit 1\n'
    )
    quantize.chmod(quantize.stat().st_mode | stat.S_IEXEC)
    return folder


def _stub_hub(requests: list[dict]) -> None:
    """Answer every huggingface_hub request in-process, as the Hub would for a user 'learner' with write access."""
    import httpx
    import huggingface_hub

    token = os.environ.get("HF_TOKEN", "")

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        seen = {
            "method": request.method,
            "path": path,
            "auth_has_token": bool(token) and token in request.headers.get("authorization", ""),
        }
        requests.append(seen)
        if path == "/api/whoami-v2":
            return httpx.Response(
                200,
                json={
                    "name": "learner",
                    "type": "user",
                    "orgs": [],
                    "auth": {"accessToken": {"role": "write"}},
                },
            )
        if path == "/api/repos/create":
            body = json.loads(
                request.content
            )  # huggingface_hub 1.x sends "visibility"; older ones "private"
            seen["visibility"] = body.get("visibility", "private" if body.get("private") else None)
            return httpx.Response(
                200, json={"url": "https://huggingface.co/learner/tiny", "name": "learner/tiny"}
            )
        if path == "/api/validate-yaml":
            return httpx.Response(200, json={"errors": [], "warnings": []})
        if "/preupload/" in path:
            files = json.loads(request.content)["files"]
            return httpx.Response(
                200,
                json={
                    "files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                        for f in files
                    ]
                },
            )
        if "/commit/" in path:
            lines = [
                json.loads(line) for line in request.content.decode().splitlines() if line.strip()
            ]
            seen["files"] = [line["value"]["path"] for line in lines if line.get("key") == "file"]
            return httpx.Response(
                200,
                json={
                    "commitUrl": "https://huggingface.co/learner/tiny/commit/" + "a" * 40,
                    "commitOid": "a" * 40,
                    "pullRequestUrl": None,
                },
            )
        return httpx.Response(
            404, json={"error": "not found"}, headers={"X-Error-Code": "EntryNotFound"}
        )

    huggingface_hub.set_client_factory(lambda: httpx.Client(transport=httpx.MockTransport(handler)))


def main(argv: list[str]) -> int:
    """``REQUESTS.json LOG.txt ARGS...``: run ``course ARGS`` against the stubbed Hub, logging at DEBUG."""
    import logging

    requests_file, log_file, args = Path(argv[0]), argv[1], argv[2:]
    logging.basicConfig(filename=log_file, level=logging.DEBUG, force=True)
    requests: list[dict] = []
    _stub_hub(requests)
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_debug()
    from tools.cli import main as course

    try:
        return course(args)
    finally:
        requests_file.write_text(json.dumps(requests, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main(sys.argv[1:]))
