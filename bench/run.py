#!/usr/bin/env python3
"""Runs every benchmark of session-authorizer in one go and writes bench/RESULTS.md.

Everything runs on this machine in the same run, so figures are compared as ratios:
server pinned to CPU 0, load generator to CPU 1 (taskset), loopback only.
Called by bench/run, which builds and installs what is needed first.
"""
import http.server, json, math, os, re, shutil, signal, socket, subprocess, sys, threading, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "bench-run"
K6 = ROOT / ".cache" / "bench" / "k6" / "bin" / "k6"
SEED_PY = ROOT / ".cache" / "bench" / "seed-venv" / "bin" / "python"
BIN = ROOT / "target" / "release" / "session-authorizer"
DURATION = os.environ.get("BENCH_SECONDS", "10")
UNIQUE = int(os.environ.get("BENCH_UNIQUE", "120000"))
CONNS = os.environ.get("BENCH_CONNECTIONS", "64")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
COLD_STARTS = int(os.environ.get("BENCH_COLD_STARTS", "20"))
SERVER_CPU, LOAD_CPU = "0", "1"

procs = []


def log(msg):
    print(f"[bench] {msg}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def spawn(cmd, env=None, cpu=None, **kw):
    if cpu is not None:
        cmd = ["taskset", "-c", cpu] + cmd
    p = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, **kw)
    procs.append(p)
    return p


def stop(p):
    if p.poll() is None:
        try:
            # One started in its own session (the fixture, under cargo) goes with its children.
            leads_group = os.getpgid(p.pid) == p.pid
        except ProcessLookupError:
            leads_group = False
        if leads_group:
            os.killpg(p.pid, signal.SIGTERM)
        else:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_http(url, timeout=30, ok=(200,)):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status in ok:
                    return time.monotonic() - start
        except Exception:
            pass
        time.sleep(0.002)
    raise RuntimeError(f"{url} not ready")


def get_text(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def metric(url, name):
    for line in get_text(url).splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            if line.startswith(name + " ") or name.endswith("}"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def wrk(url, script, args, duration=DURATION, conns=CONNS):
    env = {"WRK_COMMON": str(ROOT / "bench" / "wrk" / "common.lua")}
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "-s", str(ROOT / "bench" / "wrk" / script), url, "--", *args]
    out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non200 = int(re.search(r"NON200 (\d+)", out).group(1))
    lat = dict((k, int(v)) for k, v in re.findall(r"(p\d+)=(\d+)", out))
    return {"rps": rps, "requests": total, "non200": non200, "p50_us": lat.get("p50"), "p99_us": lat.get("p99"), "cmd": " ".join(cmd)}


def k6(env):
    summary = OUT / "k6-summary.json"
    cmd = ["taskset", "-c", LOAD_CPU, str(K6), "run", "--quiet", "--no-usage-report", "--summary-export", str(summary), str(ROOT / "bench" / "k6" / "fixed_rate.js")]
    subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True)
    s = json.load(open(summary))["metrics"]
    key = "http_req_duration" if env["TARGET"] == "http" else "grpc_req_duration"
    d = s[key]
    checks = s["checks"]
    return {
        "p50_ms": d["med"], "p99_ms": d["p(99)"], "p999_ms": d["p(99.9)"], "max_ms": d["max"],
        "ok_ratio": checks.get("value", checks.get("rate", 0)), "iterations": s["iterations"]["count"],
        "cmd": " ".join(f"{k}={v}" for k, v in env.items() if k != "TOKEN") + " " + " ".join(cmd),
    }


def bench_exe(name):
    """The path of a built [[bench]] binary."""
    return ROOT / re.search(rf"\((target/release/deps/{name}-[0-9a-f]+)\)", subprocess.run(
        ["cargo", "bench", "--locked", "--no-run", "--bench", name], cwd=ROOT, capture_output=True, text=True, check=True).stderr).group(1)


def unique_run(url, args, seconds=5):
    """wrk with a new token on every request; the verifications the server actually ran."""
    key = 'session_authorizer_session_cache_events_total{event="verification"}'
    base = url.rsplit("/", 1)[0]
    before = metric(f"{base}/metrics", key)
    u = wrk(url, "rotate.lua", args, duration=str(seconds))
    u["verifications"] = metric(f"{base}/metrics", key) - before
    u["verifications_per_s"] = u["verifications"] / seconds
    u["cycled"] = u["requests"] > UNIQUE
    return u


def verify_floor(core, tokens_file, seconds=5):
    """bench/verify_floor.rs: HTTP plus one RS256 check per request and nothing else, same load."""
    port = free_port()
    p = spawn([str(bench_exe("verify_floor")), "--core", core, "--port", str(port)], cpu=SERVER_CPU, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().startswith("LISTENING")
    try:
        return wrk(f"http://127.0.0.1:{port}/", "rotate.lua", [tokens_file, "cookie"], duration=str(seconds))
    finally:
        stop(p)


def grpc_load(addr, token, rate=1000, seconds=10):
    """gRPC Check at a fixed rate with bench/grpc_load.rs (tonic + envoy-types, open loop).

    k6's gRPC client connects and reflects per virtual user, and could not hold 1000/s here: its
    figures measured k6, so the Rust client built on Envoy's own protos replaces it."""
    cmd = ["taskset", "-c", LOAD_CPU, str(bench_exe("grpc_load")), "--addr", addr, "--token", token, "--rate", str(rate), "--seconds", str(seconds)]
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    shown = " ".join(cmd[:-6] + ["--token", "<token>"] + cmd[-4:])
    return {"p50_ms": out["p50_ms"], "p99_ms": out["p99_ms"], "p999_ms": out["p999_ms"], "max_ms": out["max_ms"],
            "ok_ratio": out["allowed"] / out["sent"], "iterations": out["sent"], "achieved_rps": out["achieved_rps"],
            "max_send_lag_ms": out["max_send_lag_ms"], "cmd": shown, "client": "bench/grpc_load.rs"}


def rss_kib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    get = lambda k: int(re.search(rf"{k}:\s+(\d+) kB", status).group(1))
    return get("VmRSS"), get("VmHWM")


def start_server(core_uri, extra=""):
    http_port, grpc_port = free_port(), free_port()
    cfg = OUT / f"config-{http_port}.toml"
    cfg.write_text(f"""
[server]
http_listen = "127.0.0.1:{http_port}"
grpc_listen = "127.0.0.1:{grpc_port}"
max_concurrency = 100000
[supertokens]
connection_uri = "{core_uri}"
[cache]
max_entries = 250000
max_ttl_secs = 3600
{extra}
""")
    t0 = time.monotonic()
    p = spawn([str(BIN), "--config", str(cfg)], env={"RUST_LOG": "warn"}, cpu=SERVER_CPU, stderr=subprocess.DEVNULL)
    ready = wait_http(f"http://127.0.0.1:{http_port}/readyz")
    return p, http_port, grpc_port, (time.monotonic() - t0)


class RuntimeApi:
    """A local Lambda Runtime API (AWS's routes and headers) that hands out one event per start
    and records the first answer: a response, an invocation error or an init error."""

    NEXT = "/2018-06-01/runtime/invocation/next"

    def __init__(self, event):
        api = self
        self.event, self.answer, self.answered, self.lock, self.served = event, None, threading.Event(), threading.Lock(), False
        self.closing = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != RuntimeApi.NEXT:
                    return self.reply(404)
                with api.lock:
                    first, api.served = not api.served, True
                if not first:
                    # The function polls again after answering: hold it until it is stopped.
                    api.closing.wait(30)
                    return self.reply(410)
                deadline = int(time.time() * 1000) + 30000
                self.reply(200, api.event, [("Content-Type", "application/json"), ("Lambda-Runtime-Aws-Request-Id", "cold-start"),
                                            ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                                            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:session-authorizer"),
                                            ("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0")])

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = self.path.rsplit("/", 1)[-1]  # response | error (invocation or init)
                if not api.answered.is_set():
                    api.answer = (kind, body)
                    api.answered.set()
                self.reply(202)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a stopped function's held poll ends on a closed socket

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.closing.set()
        self.server.shutdown()


def percentile(xs, q):
    xs = sorted(xs)
    return xs[max(0, math.ceil(q * len(xs)) - 1)]


def lambda_cold_starts(core, event_file, n=COLD_STARTS):
    """Process start to the first answered invocation of `session-authorizer lambda`: a REST event
    with a valid session cookie, so the JWKS fetch is part of it. No config file: variables only."""
    event = Path(event_file).read_bytes()
    cwd = OUT / "lambda"
    cwd.mkdir(parents=True, exist_ok=True)
    runs = []
    for _ in range(n):
        # A Runtime API per start: a stopped function's last poll can never take the next event.
        api = RuntimeApi(event)
        env = {"AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.port}", "AWS_LAMBDA_FUNCTION_NAME": "session-authorizer",
               "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
               "SESSION_AUTHORIZER__SUPERTOKENS__CONNECTION_URI": core, "RUST_LOG": "warn"}
        try:
            t0 = time.monotonic()
            p = spawn([str(BIN), "lambda"], env=env, cpu=SERVER_CPU, cwd=cwd, stderr=subprocess.DEVNULL)
            if not api.answered.wait(30):
                raise RuntimeError("the function did not answer within 30 s")
            runs.append((time.monotonic() - t0) * 1000)
            stop(p)
        finally:
            api.close()
        kind, body = api.answer
        if kind != "response" or not json.loads(body).get("principalId"):
            raise RuntimeError(f"cold start did not allow: {kind} {body[:200]!r}")
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"n": n, "median_ms": percentile(runs, 0.5), "p90_ms": percentile(runs, 0.9), "min_ms": min(runs), "max_ms": max(runs),
            "runs_ms": [round(x, 2) for x in runs], "git": git, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


COLD_ROW = "| Lambda cold start:"
COLD_HEADING = "## Lambda cold start"


def cold_start_row(cs):
    return f"{COLD_ROW} process start to first answered invocation (median of {cs['n']}; p90 {cs['p90_ms']:.1f} ms) | {cs['median_ms']:.1f} ms | (for information) | |"


def cold_start_section(cs):
    return [COLD_HEADING, "",
            f"`session-authorizer lambda` (release build) started {cs['n']} times under a local Lambda Runtime API "
            f"(`python3 bench/run.py --lambda-cold-start` measures it alone; `bench/run` with the rest), timed from "
            f"process start to the first answered invocation: a REST `REQUEST` event with a valid session cookie, so the JWKS fetch from the "
            f"loopback stub core is included; configuration from environment variables only. Measured {cs['when']} at commit `{cs['git']}`.", "",
            "| median | p90 | min | max |", "|---|---|---|---|",
            f"| {cs['median_ms']:.1f} ms | {cs['p90_ms']:.1f} ms | {cs['min_ms']:.1f} ms | {cs['max_ms']:.1f} ms |", "",
            "Lambda's own part of a cold start (fetching and unpacking the package, starting the execution environment) is not included.", ""]


def patch_results_md(cs):
    """Puts the cold-start row and section into an existing RESULTS.md, leaving the rest as it is."""
    path = ROOT / "bench" / "RESULTS.md"
    lines = path.read_text().splitlines()
    out, skipping = [], False
    for line in lines:
        if line.startswith(COLD_HEADING):
            skipping = True
            continue
        if skipping and line.startswith("## "):
            skipping = False
        if skipping or line.startswith(COLD_ROW):
            continue
        out.append(line)
    lines, out = out, []
    for line in lines:
        if line.startswith("## Commands"):
            out += cold_start_section(cs)
        out.append(line)
        if line.startswith("| start to ready"):
            out.append(cold_start_row(cs))
    path.write_text("\n".join(out) + "\n")
    log("updated the Lambda cold start in bench/RESULTS.md")


def start_fixture(unique):
    fixture_dir = OUT / "fixture"
    # Its own process group, so that `stop` reaches the fixture: cargo does not pass SIGTERM on.
    fx = spawn(["cargo", "bench", "--locked", "--bench", "fixture", "--", "--out", str(fixture_dir), "--unique", str(unique)], cwd=ROOT,
               stdout=subprocess.PIPE, text=True, start_new_session=True)
    line = fx.stdout.readline()
    assert line.startswith("READY"), line
    return fx, fixture_dir, (fixture_dir / "core_uri").read_text().strip()


def criterion():
    out = subprocess.run(["cargo", "bench", "--locked", "--bench", "hot_path", "--", "--output-format", "bencher"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    res = {}
    for name, ns in re.findall(r"test (.+?) \.\.\. bench:\s+([\d,.]+) ns/iter", out):
        res[name.strip()] = float(ns.replace(",", ""))
    return res


def versions():
    run = lambda c: subprocess.run(c, capture_output=True, text=True).stdout.strip() or subprocess.run(c, capture_output=True, text=True).stderr.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "rustc": run(["rustc", "--version"]),
        "node": run(["node", "--version"]),
        "python": run([str(SEED_PY), "--version"]),
        "wrk": run(["wrk", "-v"]).splitlines()[0],
        "k6": run([str(K6), "version"]).splitlines()[0],
        "supertokens-node": json.load(open(ROOT / "bench/seed/node/node_modules/supertokens-node/package.json"))["version"],
        "supertokens-python": run([str(SEED_PY), "-c", "import importlib.metadata as m; print(m.version('supertokens-python'))"]),
        "git": run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    r = {"versions": versions()}
    log("fixture: stub core and tokens (minting %d unique sessions)" % UNIQUE)
    fx, fixture_dir, core = start_fixture(UNIQUE)
    ev = {k: str(fixture_dir / f"{k}.json") for k in ("cached", "expired", "none")}
    token = (fixture_dir / "token.txt").read_text().strip()
    r["token_len"] = len(token)

    log("start to ready (5 starts)")
    starts = []
    for _ in range(5):
        p, *_rest, t = start_server(core)
        starts.append(t * 1000)
        stop(p)
    r["start_to_ready_ms"] = sorted(starts)[2]
    log(f"Lambda cold start ({COLD_STARTS} starts)")
    r["lambda_cold_start"] = lambda_cold_starts(core, ev["cached"])

    p, port, gport, _ = start_server(core)
    base = f"http://127.0.0.1:{port}"
    log("seed: Node handler behind a Node http server")
    seed_port = free_port()
    node = spawn(["node", str(ROOT / "bench/seed/node/server.js")], env={"PORT": str(seed_port), "CORE_URI": core}, cpu=SERVER_CPU, stdout=subprocess.PIPE, text=True)
    node.stdout.readline()
    # The machine is shared and its speed drifts: the floor and each target are measured in
    # alternation, round after round, and each ratio is taken within its round (median reported).
    targets = {
        "healthz": lambda: wrk(f"{base}/healthz", "get.lua", []),
        "forward_auth_cached": lambda: wrk(f"{base}/forward-auth", "get.lua", [f"Cookie: sAccessToken={token}", "X-Original-Method: GET", "X-Original-URI: /items"]),
        "authorize_cached": lambda: wrk(f"{base}/authorize", "post.lua", [ev["cached"]]),
        # The same requests with no session to look up: what HTTP alone costs for their shape.
        "forward_auth_no_session": lambda: wrk(f"{base}/forward-auth", "get.lua", [f"Cookie: other={token}", "X-Original-Method: GET", "X-Original-URI: /items"]),
        "authorize_none": lambda: wrk(f"{base}/authorize", "post.lua", [ev["none"]]),
        "node_http": lambda: wrk(f"http://127.0.0.1:{seed_port}/", "post.lua", [ev["cached"]], conns="32"),
    }
    rounds = []
    for i in range(ROUNDS):
        log(f"round {i + 1}/{ROUNDS}: " + ", ".join(targets))
        rounds.append({k: f() for k, f in targets.items()})
    stop(node)
    for k in targets:
        runs = sorted((rd[k] for rd in rounds), key=lambda x: x["rps"])
        r[k] = dict(runs[len(runs) // 2])
        r[k]["rounds_rps"] = [round(rd[k]["rps"]) for rd in rounds]
    med = lambda xs: sorted(xs)[len(xs) // 2]
    r["ratios"] = {
        "forward_auth_vs_floor": med([rd["forward_auth_cached"]["rps"] / rd["healthz"]["rps"] for rd in rounds]),
        "authorize_vs_floor": med([rd["authorize_cached"]["rps"] / rd["healthz"]["rps"] for rd in rounds]),
        "authorize_vs_node": med([rd["authorize_cached"]["rps"] / rd["node_http"]["rps"] for rd in rounds]),
        "forward_auth_no_session_vs_floor": med([rd["forward_auth_no_session"]["rps"] / rd["healthz"]["rps"] for rd in rounds]),
        "authorize_none_vs_floor": med([rd["authorize_none"]["rps"] / rd["healthz"]["rps"] for rd in rounds]),
    }
    log("/authorize, expired token")
    r["authorize_expired"] = wrk(f"{base}/authorize", "post.lua", [ev["expired"]])
    log("fixed rate 1000/s: /authorize and gRPC Check (k6)")
    r["k6_authorize"] = k6({"TARGET": "http", "URL": f"{base}/authorize", "EVENT_FILE": ev["cached"], "RATE": "1000", "DURATION": "10s"})
    r["k6_grpc"] = grpc_load(f"127.0.0.1:{gport}", token)
    stop(p)

    # Unique tokens: each run on a fresh server, so that no token of the list is cached yet.
    tokens_file = str(fixture_dir / "unique_tokens.txt")
    log("/authorize, a new token every request")
    p, port, _, _ = start_server(core)
    r["authorize_unique"] = unique_run(f"http://127.0.0.1:{port}/authorize", [str(fixture_dir / "unique.jsonl")])
    stop(p)
    log("/forward-auth, a new token every request")
    p, port, _, _ = start_server(core)
    r["forward_auth_unique"] = unique_run(f"http://127.0.0.1:{port}/forward-auth", [tokens_file, "cookie"])
    stop(p)
    log("verify floor: HTTP plus one RS256 check, nothing else")
    r["verify_floor"] = verify_floor(core, tokens_file)

    log("peak RSS with 100k cached sessions")
    p, port, _, _ = start_server(core)
    base = f"http://127.0.0.1:{port}"
    rss_start = rss_kib(p.pid)
    fill = wrk(f"{base}/authorize", "rotate.lua", [str(fixture_dir / "unique.jsonl")], duration="12", conns="32")
    entries = metric(f"{base}/metrics", "session_authorizer_session_cache_entries")
    rss_now, hwm = rss_kib(p.pid)
    r["rss"] = {"start_kib": rss_start[0], "after_kib": rss_now, "peak_kib": hwm, "entries": entries, "fill_requests": fill["requests"], "fill_non200": fill["non200"]}
    stop(p)

    log("seed: in-process calls (Node, Python)")
    run_json = lambda cmd, env: json.loads(subprocess.run(["taskset", "-c", SERVER_CPU] + cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    r["node_inprocess"] = run_json(["node", str(ROOT / "bench/seed/node/inprocess.js"), ev["cached"], "5000"], {"CORE_URI": core})
    r["python_inprocess"] = run_json([str(SEED_PY), str(ROOT / "bench/seed/python/inprocess.py"), ev["cached"], "1000"], {"CORE_URI": core})
    stop(fx)

    log("criterion: hot functions in process")
    r["criterion_ns"] = criterion()
    (OUT / "results.json").write_text(json.dumps(r, indent=2))
    write_results(r)


def write_results(r):
    c = r["criterion_ns"]
    floor = r["healthz"]["rps"]
    cached_ns = c.get("cached decision on a parsed event (decide, render)") or c["decide on a cached session"]
    cached_e2e_ns = c.get("cached decision, end to end (parse event, decide, render)")
    verify_ns = c.get("RS256 verify (jsonwebtoken, aws_lc_rs)")
    verify_rate = 1e9 / verify_ns
    # One server core: each unique request costs a verify plus what the floor costs.
    expected_unique = 1 / (1 / verify_rate + 1 / floor)
    u = r["authorize_unique"]
    fu = r["forward_auth_unique"]
    vf = r["verify_floor"]
    node_call_us = r["node_inprocess"]["per_call_us"]
    q = r["ratios"]
    rows = [
        ("cached session via `/forward-auth` vs `/healthz` floor", q["forward_auth_vs_floor"], 0.8),
        ("cached session via `/authorize` vs `/healthz` floor", q["authorize_vs_floor"], 0.5),
        ("`/forward-auth`, the same request with no session cookie (nothing to look up) vs floor: the HTTP cost of the request's shape", q["forward_auth_no_session_vs_floor"], None),
        ("`/authorize`, the same event with no token vs floor: the HTTP and JSON cost of the event", q["authorize_none_vs_floor"], None),
        ("cached session via `/authorize` vs Node seed over HTTP", q["authorize_vs_node"], 15),
        ("in-process cached decision (parsed event, as the Node handler is given) vs one Node seed call", node_call_us * 1000 / cached_ns, 100),
        ("in-process cached decision including the JSON event parse vs one Node seed call", node_call_us * 1000 / cached_e2e_ns, None),
        ("unique tokens via `/forward-auth`: verifications/s vs (criterion RS256 rate with the floor's cost)", fu["verifications_per_s"] / expected_unique, 0.8),
        ("unique tokens via `/forward-auth` vs the verify floor (HTTP plus one RS256 check and nothing else, measured)", fu["verifications_per_s"] / vf["rps"], None),
        ("verify floor vs (criterion RS256 rate with the floor's cost): what the model leaves out", vf["rps"] / expected_unique, None),
        ("unique tokens via `/authorize` (1.6 KB event): verifications/s vs (criterion RS256 rate with the floor's cost)", u["verifications_per_s"] / expected_unique, None),
    ]
    v = r["versions"]
    lines = ["# Benchmark results", "",
             f"Produced by `bench/run` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} at commit `{v['git']}`.",
             "Server pinned to CPU 0, load generator to CPU 1, loopback. Compare within this run only: the machine is shared.", "",
             "## Ratios (the acceptance figures)", "", "| what | measured | needed | |", "|---|---|---|---|"]
    for name, got, need in rows:
        if need is None:
            lines.append(f"| {name} | {got:.2f}x | (for information) | |")
        else:
            lines.append(f"| {name} | {got:.2f}x | ≥ {need}x | {'pass' if got >= need else 'FAIL'} |")
    k_a, k_g = r["k6_authorize"], r["k6_grpc"]
    lines += [f"| `/authorize` p99 at 1000 req/s | {k_a['p99_ms']:.3f} ms | < 1 ms | {'pass' if k_a['p99_ms'] < 1 else 'FAIL'} |",
              f"| gRPC `Check` p99 at 1000 req/s | {k_g['p99_ms']:.3f} ms | < 1 ms | {'pass' if k_g['p99_ms'] < 1 else 'FAIL'} |",
              f"| peak RSS with {int(r['rss']['entries'])} cached sessions | {r['rss']['peak_kib'] / 1024:.1f} MiB | < 64 MiB | {'pass' if r['rss']['peak_kib'] < 65536 and r['rss']['entries'] >= 100000 else 'FAIL'} |",
              f"| start to ready (median of 5, JWKS reachable) | {r['start_to_ready_ms']:.1f} ms | < 200 ms | {'pass' if r['start_to_ready_ms'] < 200 else 'FAIL'} |",
              *([cold_start_row(r["lambda_cold_start"])] if "lambda_cold_start" in r else []),
              "", f"Throughput ratios are medians of {ROUNDS} rounds; in each round the floor and the targets run back to back.",
              "", "## Throughput at saturation (wrk, 1 thread, 64 connections unless noted)", "",
              "| target | req/s (median round) | p50 | p99 | non-200 | req/s per round |", "|---|---|---|---|---|---|"]
    for key, label in [("healthz", "`GET /healthz` (the HTTP floor)"), ("forward_auth_cached", "`/forward-auth`, cached session"),
                       ("forward_auth_no_session", "`/forward-auth`, same request with an `other` cookie in place of the session (anonymous)"),
                       ("authorize_cached", "`POST /authorize`, 1.6 KB REST event, cached session"), ("authorize_none", "`POST /authorize`, no token"),
                       ("authorize_expired", "`POST /authorize`, expired token (401)"), ("authorize_unique", "`POST /authorize`, a new token every request (5 s)"),
                       ("forward_auth_unique", "`/forward-auth`, a new token every request (5 s)"),
                       ("verify_floor", "verify floor: HTTP plus one RS256 check per request (bench/verify_floor.rs, 5 s)"),
                       ("node_http", "Node seed handler behind a Node `http` server (32 connections)")]:
        x = r[key]
        per_round = ", ".join(f"{v:,}" for v in x.get("rounds_rps", [])) or "-"
        lines.append(f"| {label} | {x['rps']:,.0f} | {x['p50_us'] / 1000:.2f} ms | {x['p99_us'] / 1000:.2f} ms | {x['non200']} | {per_round} |")
    # What a cached decision may cost per request for /forward-auth to reach 0.8x of the floor,
    # given what HTTP alone costs for the same request (both from this run's medians).
    budget_us = 1e6 / (0.8 * floor) - 1e6 / r["forward_auth_no_session"]["rps"]
    spent_us = 1e6 / r["forward_auth_cached"]["rps"] - 1e6 / r["forward_auth_no_session"]["rps"]
    sha_ns = c.get("cache key (SHA-256 of the token)")
    lines += ["", f"For `/forward-auth` at 0.8x of the floor, a cached decision (cookie scan, cache key, lookup, checks, identity headers) "
              f"may cost {budget_us:.2f} µs per request over the same request without a session; it costs {spent_us:.2f} µs here"
              + (f", of which the SHA-256 cache key the issue prescribes takes {sha_ns / 1000:.2f} µs in criterion (the session cookie here holds a {r['token_len']}-character token)." if sha_ns else "."), ""]
    for label, x in [("`/forward-auth`", fu), ("`/authorize`", u)]:
        lines.append(f"Unique tokens via {label}: {x['requests']:,} requests, {x['verifications']:,.0f} RS256 verifications in 5 s "
                     f"({x['verifications_per_s']:,.0f}/s; {'the token list was cycled, later requests were cache hits' if x['cycled'] else 'no token repeated'}).")
    lines += ["", f"The model ceiling (one server core: a criterion RS256 verify, {verify_ns / 1000:.1f} µs, plus the floor's cost per request) is "
              f"{expected_unique:,.0f}/s. The measured verify floor, a server on the same stack that only finds the cookie and runs the same "
              f"RS256 call, reached {vf['rps']:,.0f}/s under the same load: when every request costs tens of microseconds the load generator "
              "sleeps between answers, and waking it on this virtual machine costs the sending core several microseconds per answer "
              "(perf: `_raw_spin_unlock_irqrestore` under `sock_def_readable`), a cost the floor, answered faster than wrk asks, mostly avoids.", "",
              "## Fixed rate, 1000 req/s for 10 s (HTTP: k6 constant-arrival-rate; gRPC: bench/grpc_load.rs, open loop)", "", "| target | p50 | p99 | p99.9 | max | checks ok |", "|---|---|---|---|---|---|"]
    for label, x in [("`POST /authorize`, cached session", k_a), ("gRPC `Check`, cached session", k_g)]:
        lines.append(f"| {label} | {x['p50_ms']:.3f} ms | {x['p99_ms']:.3f} ms | {x['p999_ms']:.3f} ms | {x['max_ms']:.2f} ms | {x['ok_ratio'] * 100:.1f}% |")
    lines += ["", "## In process", "", "| what | per call |", "|---|---|"]
    for name, ns in c.items():
        lines.append(f"| {name} (criterion) | {ns / 1000:.2f} µs |")
    lines += [f"| Node seed handler, one call, valid cookie (supertokens-node) | {node_call_us:.1f} µs |",
              f"| Python seed handler, one call, valid cookie (supertokens-python) | {r['python_inprocess']['per_call_us']:.1f} µs |",
              "", "## Memory and start", "",
              f"RSS at start {r['rss']['start_kib'] / 1024:.1f} MiB; after {r['rss']['fill_requests']:,} requests with unique tokens "
              f"({int(r['rss']['entries']):,} sessions cached) {r['rss']['after_kib'] / 1024:.1f} MiB, peak {r['rss']['peak_kib'] / 1024:.1f} MiB. "
              f"Start to ready: {r['start_to_ready_ms']:.1f} ms.", "",
              *(cold_start_section(r["lambda_cold_start"]) if "lambda_cold_start" in r else []),
              "## Commands", "", "```", "bench/run", "```", "", "Individual runs (ports vary):", "", "```"]
    for key in ("healthz", "authorize_cached", "forward_auth_cached", "forward_auth_no_session", "authorize_unique", "forward_auth_unique", "verify_floor", "node_http"):
        lines.append(r[key]["cmd"])
    lines += [k_a["cmd"], k_g["cmd"], "cargo bench --bench hot_path", "python3 bench/run.py --lambda-cold-start   # the Lambda cold start alone", "```", "", "## Versions", ""]
    lines += [f"- {k}: {val}" for k, val in v.items()]
    path = ROOT / "bench" / "RESULTS.md"
    # Sections measured apart (bench/soak; A/B comparisons of two builds, written by hand with
    # their commands) are kept as they are.
    old = path.read_text() if path.exists() else ""
    kept = []
    for name in ("soak", "ab"):
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        if begin in old and end in old:
            kept.append(old[old.index(begin):old.index(end) + len(end)])
    soak = "\n\n".join(kept)
    # Commands are shown relative to the repository root.
    text = "\n".join(lines).replace(str(ROOT) + "/", "")
    path.write_text(text + "\n" + ("\n" + soak + "\n" if soak else ""))
    log("wrote bench/RESULTS.md")
    print("\n".join(lines))


def cold_start_only():
    """Measures the Lambda cold start alone (needs `cargo build --release` and the fixture built),
    records it in the last run's results.json when there is one, and updates RESULTS.md."""
    OUT.mkdir(parents=True, exist_ok=True)
    fx, fixture_dir, core = start_fixture(0)
    log(f"Lambda cold start ({COLD_STARTS} starts)")
    cs = lambda_cold_starts(core, fixture_dir / "cached.json")
    stop(fx)
    (OUT / "lambda_cold_start.json").write_text(json.dumps(cs, indent=2))
    results = OUT / "results.json"
    if results.exists():
        r = json.load(open(results))
        r["lambda_cold_start"] = cs
        results.write_text(json.dumps(r, indent=2))
    patch_results_md(cs)
    print("\n".join([cold_start_row(cs), ""] + cold_start_section(cs)))


if __name__ == "__main__":
    if sys.argv[1:] == ["--report-only"]:
        # Rewrite RESULTS.md from the last run's results.json (e.g. after changing the report).
        write_results(json.load(open(OUT / "results.json")))
        sys.exit(0)
    if sys.argv[1:] == ["--lambda-cold-start"]:
        try:
            cold_start_only()
        finally:
            for p in procs:
                stop(p)
        sys.exit(0)
    try:
        main()
    finally:
        for p in procs:
            stop(p)
