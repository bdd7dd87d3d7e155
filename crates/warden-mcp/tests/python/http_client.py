"""The official MCP Python SDK drives `warden serve`'s /mcp over Streamable HTTP.

Starts the `warden` binary as a service (`warden serve`) on a temp folder with
the shipped http-probe and http-action plugins, a copy of the shipped policy
bundle in `prod` (loopback allowed, at most one change per principal and
hour), two API tokens (`py`, an operator; `alice`, an approver) and `[mcp]`.
Then, as a real client with py's token: lists the tools, calls the read-only
probe, makes a change that needs approval (the error names an approval id,
alice approves it through /v1/approvals, the retry with `approval_id` runs
it), makes a second change that the policy denies with its reasons, and
cancels a call that hangs. Prints `N passed, N failed`.

Run from the repository root after `cargo build -p warden-cli` and a test
build that made the plugins (`cargo test -p warden-mcp --no-run`):

    target/mcp-venv/bin/python crates/warden-mcp/tests/python/http_client.py
"""

import argparse
import asyncio
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import anyio
from checks import check, failed, tally, text
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ROOT = Path(__file__).resolve().parents[4]
PLUGINS = ROOT / "plugins/target/wasm32-wasip2/release"
PY_TOKEN = "py-operator-token-0123456789abcdef"
ALICE_TOKEN = "alice-approver-token-0123456789ab"


class Site(http.server.BaseHTTPRequestHandler):
    """`/health` answers at once; `/restart` counts changes; `/hang` does not answer for 30 s."""

    restarts = 0
    hang_started = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        if self.path.startswith("/hang"):
            Site.hang_started.set()
            time.sleep(30)
        if self.path.startswith("/restart"):
            Site.restarts += 1
        body = b"ok"
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(work: Path, port: int) -> Path:
    plugins = work / "plugins"
    plugins.mkdir()
    for name in ("http_probe.wasm", "http_action.wasm"):
        src = PLUGINS / name
        if not src.exists():
            sys.exit(f"{src} is missing: build the plugins first (cargo test -p warden-mcp --no-run)")
        shutil.copy(src, plugins / name)
    policies = work / "policies"
    policies.mkdir()
    for rego in (ROOT / "policies").glob("*.rego"):
        shutil.copy(rego, policies / rego.name)
    data = json.loads((ROOT / "policies/data.json").read_text())
    config = data["warden"]["config"]
    config["network"]["allowed_private_cidrs"]["prod"] = ["127.0.0.0/8"]
    config["max_mutations_per_hour_per_principal"] = 1
    (policies / "data.json").write_text(json.dumps(data))
    (work / "runbooks").mkdir()
    secrets = work / "secrets"
    secrets.mkdir()
    (secrets / "py").write_text(PY_TOKEN + "\n")
    (secrets / "alice").write_text(ALICE_TOKEN + "\n")
    toml = f"""
[agent]
plugins = "plugins"
policy = "policies"
runbooks = "runbooks"
journal = "journal/journal.jsonl"
data_dir = "serve"
key_file = "key/host.key"
env = "prod"

[listen]
addr = "127.0.0.1:{port}"

[limits]
approval_timeout = "5m"
drain_deadline = "2s"

[[tokens]]
name = "py"
roles = ["operator"]
token = {{ file = "secrets/py" }}

[[tokens]]
name = "alice"
roles = ["approver"]
token = {{ file = "secrets/alice" }}

[mcp]
env = "prod"
call_timeout = "60s"
"""
    path = work / "warden.toml"
    path.write_text(toml)
    return path


def api(base: str, method: str, path: str, token: str, body: object | None = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def wait_ready(base: str, proc: subprocess.Popen) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"warden serve exited with {proc.returncode}")
        try:
            with opener.open(base + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit("warden serve did not become ready within 120 s")


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def stopped_cancelled(line: str) -> bool:
    """Whether a journal line records a task stopped as cancelled."""

    def walk(v: object) -> bool:
        if isinstance(v, dict):
            data = v.get("data")
            if v.get("kind") == "stop" and isinstance(data, dict) and data.get("status") == "cancelled":
                return True
            return any(walk(x) for x in v.values())
        if isinstance(v, list):
            return any(walk(x) for x in v)
        return False

    try:
        return walk(json.loads(line))
    except ValueError:
        return False


def meta(result, key: str) -> str:
    return (result.meta or {}).get(key, "")


async def drive(base: str, site: str, journal: Path) -> None:
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {PY_TOKEN}"})
    async with client:
        async with streamable_http_client(base + "/mcp", http_client=client) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                check("initialize names the server", init.server_info.name == "warden", init.server_info)

                tools = {t.name: t for t in (await session.list_tools()).tools}
                check(
                    "tools/list has the plugins and the built-ins",
                    {"http-probe", "http-action", "journal_show", "runbook_run"} <= set(tools),
                    sorted(tools),
                )
                action = tools.get("http-action")
                check(
                    "a mutating tool takes dry_run (default true) and approval_id",
                    action is not None
                    and action.input_schema["properties"].get("dry_run", {}).get("default") is True
                    and "approval_id" in action.input_schema["properties"],
                    action,
                )

                r = await session.call_tool("http-probe", {"url": site + "/health", "expect_status": [200]})
                out = r.structured_content or {}
                check("a read-only call succeeds", not r.is_error and out.get("ok") is True, r)
                check("in the server's environment", meta(r, "warden/env") == "prod", r.meta)

                args = {"url": site + "/restart", "dry_run": False}
                r = await session.call_tool("http-action", args)
                approval = meta(r, "warden/approval_id")
                t = text(r)
                check("a change in prod is a tool error naming an approval id", r.is_error is True and approval, r)
                check("with the policy's reason", "a human must approve this call" in t, t)
                check("and how to come back", f'"approval_id": "{approval}"' in t, t)
                check("nothing changed yet", Site.restarts == 0, Site.restarts)

                status, pending = api(base, "GET", "/v1/approvals", ALICE_TOKEN)
                listed = pending.get("approvals", []) if isinstance(pending, dict) else pending
                mine = [p for p in listed if p.get("id") == approval]
                check(
                    "the approval waits in /v1/approvals, for the token's holder",
                    status == 200 and mine and mine[0].get("principal") == "py",
                    pending,
                )
                status, answer = api(
                    base, "POST", f"/v1/approvals/{approval}", ALICE_TOKEN, {"approve": True, "reason": "from the SDK test"}
                )
                check("alice approves it through the API", status == 200, answer)

                r = await session.call_tool("http-action", {**args, "approval_id": approval})
                check("the retry with the approval id runs the change", not r.is_error, r)
                check("the change was made once", Site.restarts == 1, Site.restarts)
                task = meta(r, "warden/task")
                shown = await session.call_tool("journal_show", {"task_id": task})
                timeline = (shown.structured_content or {}).get("timeline", "")
                check("journal_show has alice's approval", "alice" in timeline, timeline)

                r = await session.call_tool("http-action", {"url": site + "/restart?second", "dry_run": False})
                t = text(r)
                check("a second change is denied", r.is_error is True, r)
                check("with the policy's reason", "the limit is 1" in t, t)
                check("and no retry", "Do not retry it or work around it." in t, t)
                check("nothing more changed", Site.restarts == 1, Site.restarts)

                # Cancellation: abandon a call whose guest waits on a server
                # that does not answer; the SDK sends notifications/cancelled.
                started = time.monotonic()
                with anyio.move_on_after(15):
                    async with anyio.create_task_group() as tg:

                        async def hang() -> None:
                            await session.call_tool("http-probe", {"url": site + "/hang"})

                        tg.start_soon(hang)
                        await anyio.to_thread.run_sync(Site.hang_started.wait, 10)
                        await anyio.sleep(0.5)
                        tg.cancel_scope.cancel()
                check("a cancelled call returns at once", time.monotonic() - started < 14, time.monotonic() - started)
                cancelled = False
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and not cancelled:
                    cancelled = any(stopped_cancelled(line) for line in read_lines(journal))
                    await anyio.sleep(0.2)
                check("the cancellation is journaled", cancelled, "no cancel record in the journal")

                r = await session.call_tool("http-probe", {"url": site + "/health", "expect_status": [200]})
                check("the session still works after a cancel", not r.is_error, r)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    parser.add_argument("--warden", default=str(Path(target) / "debug/warden"))
    args = parser.parse_args()
    warden = str(Path(args.warden).resolve())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port = free_port()
        config = setup(work, port)
        env = dict(os.environ)
        env["NO_COLOR"] = "1"
        for k in ("OPENAI_API_KEY", "WARDEN_LLM_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            env.pop(k, None)
        log = open(work / "serve.log", "w")
        proc = subprocess.Popen(
            [warden, "--plugin-dir", str(work / "plugins"), "serve", "--config", str(config)],
            cwd=str(work),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, proc)
            asyncio.run(asyncio.wait_for(drive(base, site, work / "journal/journal.jsonl"), timeout=180))
        except Exception as e:  # a crash is a failure, reported like one
            check("the session ran to the end", False, repr(e))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
            if failed():
                print("--- warden serve's log ---")
                print((work / "serve.log").read_text()[-8000:])
    server.shutdown()
    return tally()


if __name__ == "__main__":
    sys.exit(main())
