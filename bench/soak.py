#!/usr/bin/env python3
"""Soak: about 70% of saturation for 10 minutes on a mix of front doors and outcomes.

Measures saturation of the mix first, then paces wrk (its delay() hook) to about 70% of it and
runs minute after minute, recording per minute the rate, p99, every status and socket error, and
the server's RSS. Writes the "Soak" section of bench/RESULTS.md (bench/run keeps it). Pass when
errors are zero, every answer has the expected status (one request in six is an expired token:
401) and RSS at the end is within 10% of RSS after the first minute.
Called by bench/soak, which builds and installs what is needed.
"""
import json, math, os, re, subprocess, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (shares the fixture, server and wrk helpers)

MINUTES = int(os.environ.get("SOAK_MINUTES", "10"))
CONNS = 200
ROOT = bench.ROOT
OUT = bench.OUT
BEGIN, END = "<!-- soak:begin -->", "<!-- soak:end -->"


def wrk_mix(base, fixture_dir, seconds, delay_ms):
    env = {**os.environ}
    cmd = ["taskset", "-c", bench.LOAD_CPU, "wrk", "-t1", f"-c{CONNS}", f"-d{seconds}s", "--timeout", "5s",
           "-s", str(ROOT / "bench" / "wrk" / "mix.lua"), base, "--", str(fixture_dir), str(delay_ms)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    statuses = {int(k): int(v) for k, v in re.findall(r"(\d+)=(\d+)", re.search(r"STATUS (.*)", out).group(1))}
    errors = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", re.search(r"ERRORS (.*)", out).group(1)))
    lat = dict((k, int(v)) for k, v in re.findall(r"(p\d+)=(\d+)", out))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    shown = " ".join(cmd).replace(str(ROOT) + "/", "")
    return {"rps": rps, "statuses": statuses, "errors": errors, "p50_us": lat["p50"], "p99_us": lat["p99"], "p999_us": lat["p999"], "cmd": shown}


def bad_answers(m):
    total = sum(m["statuses"].values())
    unexpected = sum(n for code, n in m["statuses"].items() if code not in (200, 401))
    # One request in six is the expired token; allow for the cycle boundary of each connection.
    expired_share = m["statuses"].get(401, 0) / max(total, 1)
    skew = abs(expired_share - 1 / 6) > 0.01
    # wrk's own `status` error count is every non-2xx answer, the expected 401s included.
    sockets = sum(v for k, v in m["errors"].items() if k != "status")
    return unexpected + sockets + (1 if skew else 0)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    fixture_dir = OUT / "soak-fixture"
    # Its own process group, so that `stop` reaches the fixture under cargo.
    fx = bench.spawn(["cargo", "bench", "--locked", "--bench", "fixture", "--", "--out", str(fixture_dir), "--unique", "20000"],
                     cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert fx.stdout.readline().startswith("READY")
    core = (fixture_dir / "core_uri").read_text().strip()
    p, port, _, _ = bench.start_server(core)
    base = f"http://127.0.0.1:{port}"
    bench.log("saturation of the mix (10 s, no pacing)")
    sat = wrk_mix(base, fixture_dir, 10, 0)
    target = 0.7 * sat["rps"]
    # Each connection sends one request, waits for it, then waits delay(): rate = CONNS / (delay + latency).
    delay_ms = max(1, round(CONNS * 1000 / target))
    # Calibrate once: rate = CONNS / (delay + time per request), so measure that time when paced.
    trial = wrk_mix(base, fixture_dir, 10, delay_ms)
    per_request_ms = max(0.0, CONNS * 1000 / trial["rps"] - delay_ms)
    delay_ms = max(1, round(CONNS * 1000 / target - per_request_ms))
    bench.log(f"saturation {sat['rps']:,.0f} req/s; soak target {target:,.0f} req/s, delay {delay_ms} ms per connection")
    minutes = []
    for i in range(MINUTES):
        m = wrk_mix(base, fixture_dir, 60, delay_ms)
        m["rss_kib"] = bench.rss_kib(p.pid)[0]
        m["bad"] = bad_answers(m)
        minutes.append(m)
        bench.log(f"minute {i + 1}/{MINUTES}: {m['rps']:,.0f} req/s, p99 {m['p99_us'] / 1000:.2f} ms, RSS {m['rss_kib'] / 1024:.1f} MiB, bad {m['bad']}")
    bench.stop(p)
    bench.stop(fx)
    r = {"saturation": sat, "delay_ms": delay_ms, "minutes": minutes, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
         "git": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()}
    (OUT / "soak.json").write_text(json.dumps(r, indent=2))
    write_section(r)


def section(r):
    ms = r["minutes"]
    first, last = ms[0], ms[-1]
    rss_growth = (last["rss_kib"] - first["rss_kib"]) / first["rss_kib"]
    errors = sum(m["bad"] for m in ms)
    total = sum(sum(m["statuses"].values()) for m in ms)
    mean_rps = sum(m["rps"] for m in ms) / len(ms)
    ok = errors == 0 and abs(rss_growth) <= 0.10
    lines = [BEGIN, "## Soak", "",
             f"`bench/soak` on {r['date']} at commit `{r['git']}`: {len(ms)} minutes of a mix of front doors and outcomes "
             f"(`/authorize` cached, no token and expired; `/forward-auth` cached and with a new token each time; `/ext-authz` cached), "
             f"paced to {mean_rps:,.0f} req/s = {mean_rps / r['saturation']['rps'] * 100:.0f}% of the mix's saturation "
             f"({r['saturation']['rps']:,.0f} req/s), {CONNS} connections.", "",
             "| | figure | needed | |", "|---|---|---|---|",
             f"| requests | {total:,} | | |",
             f"| errors (socket errors, unexpected statuses) | {errors} | 0 | {'pass' if errors == 0 else 'FAIL'} |",
             f"| RSS after minute 1 -> after minute {len(ms)} | {first['rss_kib'] / 1024:.1f} -> {last['rss_kib'] / 1024:.1f} MiB ({rss_growth * 100:+.1f}%) | within 10% | {'pass' if abs(rss_growth) <= 0.10 else 'FAIL'} |",
             f"| p99 minute 1 -> minute {len(ms)} | {first['p99_us'] / 1000:.2f} -> {last['p99_us'] / 1000:.2f} ms | (drift, for information) | |",
             "", "| minute | req/s | p50 | p99 | p99.9 | RSS | statuses |", "|---|---|---|---|---|---|---|"]
    for i, m in enumerate(ms, 1):
        st = ", ".join(f"{k}: {v:,}" for k, v in sorted(m["statuses"].items()))
        lines.append(f"| {i} | {m['rps']:,.0f} | {m['p50_us'] / 1000:.2f} ms | {m['p99_us'] / 1000:.2f} ms | {m['p999_us'] / 1000:.2f} ms | {m['rss_kib'] / 1024:.1f} MiB | {st} |")
    lines += ["", f"Verdict: {'pass' if ok else 'FAIL'}. Command: `bench/soak` (`SOAK_MINUTES` to shorten); one minute's wrk line:", "",
              "```", last["cmd"], "```", END]
    return "\n".join(lines)


def write_section(r):
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + section(r) + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section(r) + "\n"
    path.write_text(text)
    bench.log("wrote the soak section of bench/RESULTS.md")


if __name__ == "__main__":
    if sys.argv[1:] == ["--report-only"]:
        write_section(json.load(open(OUT / "soak.json")))
        sys.exit(0)
    try:
        main()
    finally:
        for proc in bench.procs:
            bench.stop(proc)
