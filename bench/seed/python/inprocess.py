"""In-process timing of the Python seed handler (no HTTP).

    CORE_URI=http://127.0.0.1:3567 python inprocess.py EVENT_FILE N [WARMUP]

Warms up (default 200 calls; the first call also fetches the JWKS from the core),
then times N sequential calls of handler(event, None), each on a fresh deep copy
of the event (made outside the timed region). Prints one JSON line:
    {"impl":"python","calls":N,"per_call_us":mean,"p50_us":..,"p99_us":..,"outcome":...}
where outcome is the principalId of the last answer, or the error message.
"""

import copy
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from handler import handler  # noqa: E402


def usage():
    sys.stderr.write("usage: python inprocess.py EVENT_FILE N [WARMUP]\n")
    sys.exit(2)


def call_once(event):
    try:
        return handler(event, None).get("principalId")
    except Exception as e:  # noqa: BLE001
        return str(e)


def percentile(sorted_samples, p):
    if not sorted_samples:
        return 0.0
    idx = min(len(sorted_samples) - 1, max(0, math.ceil(p / 100 * len(sorted_samples)) - 1))
    return sorted_samples[idx]


def main():
    if len(sys.argv) < 3:
        usage()
    try:
        n = int(sys.argv[2])
        warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    except ValueError:
        usage()
    if n <= 0 or warmup < 0:
        usage()
    with open(sys.argv[1], "r", encoding="utf-8") as f:
        template = json.load(f)

    for _ in range(warmup):
        call_once(copy.deepcopy(template))

    samples = []
    outcome = None
    total = 0
    for _ in range(n):
        ev = copy.deepcopy(template)
        t0 = time.perf_counter_ns()
        outcome = call_once(ev)
        dt = time.perf_counter_ns() - t0
        total += dt
        samples.append(dt / 1000)
    samples.sort()
    out = {
        "impl": "python",
        "calls": n,
        "per_call_us": round(total / 1000 / n, 1),
        "p50_us": round(percentile(samples, 50), 1),
        "p99_us": round(percentile(samples, 99), 1),
        "outcome": outcome,
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
