"use strict";
/*
 * In-process timing of the Node seed handler (no HTTP).
 *
 *   CORE_URI=http://127.0.0.1:3567 node inprocess.js EVENT_FILE N [WARMUP]
 *
 * Warms up (default 200 calls; the first call also fetches the JWKS from the core),
 * then times N sequential awaited calls, each on a fresh deep copy of the event
 * (the SDK mutates its input). The copy is made outside the timed region.
 * Prints one JSON line:
 *   {"impl":"node","calls":N,"per_call_us":mean,"p50_us":..,"p99_us":..,"outcome":...}
 * where outcome is the principalId of the last answer, or the error message.
 */

const fs = require("fs");
const { handler } = require("./handler");

function usage() {
    process.stderr.write("usage: node inprocess.js EVENT_FILE N [WARMUP]\n");
    process.exit(2);
}

async function callOnce(event) {
    try {
        const res = await handler(event);
        return { ok: true, outcome: res.principalId };
    } catch (err) {
        return { ok: false, outcome: err && err.message !== undefined ? String(err.message) : String(err) };
    }
}

function percentile(sorted, p) {
    if (sorted.length === 0) return 0;
    const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[idx];
}

async function main() {
    const [file, nArg, warmArg] = process.argv.slice(2);
    if (!file || !nArg) usage();
    const n = Number(nArg);
    const warmup = warmArg === undefined ? 200 : Number(warmArg);
    if (!Number.isInteger(n) || n <= 0 || !Number.isInteger(warmup) || warmup < 0) usage();

    const template = JSON.parse(fs.readFileSync(file, "utf8"));

    for (let i = 0; i < warmup; i++) {
        await callOnce(structuredClone(template));
    }

    const samples = new Float64Array(n);
    let last;
    let total = 0n;
    for (let i = 0; i < n; i++) {
        const ev = structuredClone(template);
        const t0 = process.hrtime.bigint();
        last = await callOnce(ev);
        const dt = process.hrtime.bigint() - t0;
        total += dt;
        samples[i] = Number(dt) / 1000;
    }
    const sorted = Array.from(samples).sort((a, b) => a - b);
    const round = (x) => Math.round(x * 10) / 10;
    process.stdout.write(
        JSON.stringify({
            impl: "node",
            calls: n,
            per_call_us: round(Number(total) / 1000 / n),
            p50_us: round(percentile(sorted, 50)),
            p99_us: round(percentile(sorted, 99)),
            outcome: last.outcome,
        }) + "\n"
    );
}

main().catch((err) => {
    process.stderr.write((err && err.stack) || String(err));
    process.stderr.write("\n");
    process.exit(1);
});
