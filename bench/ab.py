"""A/B of two builds on the same machine, in the same run: the cached `/forward-auth` ratio to
the `/healthz` floor (wrk) and `/authorize` latency at a fixed 1000 req/s (k6), each build in
turn, round after round, so that the machine's drift falls on both alike.

    git worktree add ../base <rev> && (cd ../base && cargo build --release --locked)
    cargo build --release --locked
    python3 bench/ab.py ../base/target/release/session-authorizer target/release/session-authorizer

Needs what `bench/run` installs (wrk, k6, the fixture bench). The two builds are called A and B;
A may be a build whose `/forward-auth` reads `X-Forwarded-*` (before `forward_auth.proxy`): pass
`--a-forwarded` and it is sent those headers.
"""
import importlib.util
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("run", HERE / "run.py")
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__)
        return
    a_forwarded = "--a-forwarded" in sys.argv
    rounds = int(run.os.environ.get("AB_ROUNDS", "4"))
    builds = {"A": Path(args[0]).resolve(), "B": Path(args[1]).resolve()}
    run.OUT.mkdir(parents=True, exist_ok=True)
    fx, fixture_dir, core = run.start_fixture(1000)
    token = (fixture_dir / "token.txt").read_text().strip()
    event = str(fixture_dir / "cached.json")
    ratios = {k: [] for k in builds}
    p99s = {k: [] for k in builds}
    for i in range(rounds):
        for name, binary in builds.items():
            run.BIN = binary
            p, port, _, _ = run.start_server(core)
            base = f"http://127.0.0.1:{port}"
            names = ("X-Forwarded-Method", "X-Forwarded-Uri") if name == "A" and a_forwarded else ("X-Original-Method", "X-Original-URI")
            headers = [f"Cookie: sAccessToken={token}", f"{names[0]}: GET", f"{names[1]}: /items"]
            run.wrk(f"{base}/forward-auth", "get.lua", headers, duration="2")
            floor = run.wrk(f"{base}/healthz", "get.lua", [], duration="5")["rps"]
            fa = run.wrk(f"{base}/forward-auth", "get.lua", headers, duration="5")
            floor2 = run.wrk(f"{base}/healthz", "get.lua", [], duration="5")["rps"]
            k = run.k6({"TARGET": "http", "URL": f"{base}/authorize", "EVENT_FILE": event, "RATE": "1000", "DURATION": "10s"})
            run.stop(p)
            assert fa["non200"] == 0, f"{name}: /forward-auth answered non-200"
            ratios[name].append(fa["rps"] / ((floor + floor2) / 2))
            p99s[name].append(k["p99_ms"])
            print(f"round {i + 1} {name}: /forward-auth {fa['rps']:,.0f} req/s = {ratios[name][-1]:.3f}x of the floor; /authorize p99 at 1000 req/s {k['p99_ms']:.3f} ms", flush=True)
    run.stop(fx)
    for name in builds:
        print(f"{name} ({builds[name]}): median /forward-auth ratio {statistics.median(ratios[name]):.3f}x, median /authorize p99 {statistics.median(p99s[name]):.3f} ms")


if __name__ == "__main__":
    main()
