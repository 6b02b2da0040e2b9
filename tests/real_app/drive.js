"use strict";
/*
 * Drives the website of app.js in headless Chromium through a session's life, every API call
 * going through the proxy under test. Prints one JSON line per step:
 *   {"step": "...", "ok": true|false, "detail": {...}}
 * then {"done": true}. The Rust test (tests/it/real_app.rs) reads the lines and checks the backend's
 * own record of what reached it.
 *
 * Environment: SITE (the website's origin), API (the proxy's origin), MODE (cookie | header),
 * ANTI_CSRF (VIA_TOKEN | NONE), TTL_SECS (the access token's life), CHROMIUM (the browser).
 */
const os = require("os");
const fs = require("fs");
const path = require("path");
const puppeteer = require("puppeteer-core");

const { SITE, API, MODE, ANTI_CSRF, CHROMIUM } = process.env;
const TTL_SECS = Number(process.env.TTL_SECS || "3");

const report = (step, ok, detail) => console.log(JSON.stringify({ step, ok: !!ok, detail }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "e2e-chromium-"));
    const browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            `--user-data-dir=${profile}`,
        ],
    });
    try {
        const page = await browser.newPage();
        const consoleLines = [];
        page.on("console", (m) => consoleLines.push(m.text()));
        page.on("pageerror", (e) => consoleLines.push(String(e)));
        await page.goto(`${SITE}/?api=${encodeURIComponent(API)}&mode=${MODE}`);
        await page.waitForFunction("window.ready === true", { timeout: 10000 });
        const call = (method, p, body) => page.evaluate((m, q, b) => window.call(m, q, b), method, p, body);
        const sdk = (name) => page.evaluate((n) => window.sdk[n](), name);
        const events = () => page.evaluate(() => window.events.splice(0));

        // Sign in: the backend SDK creates the session (through the proxy: /test is optional).
        let r = await call("POST", "/test/signin", { userId: "user-e2e", roles: ["user"] });
        report("sign in", r.status === 200 && (await sdk("exists")), { status: r.status, body: r.body });

        // An API call reaches the backend with the user's identity.
        r = await call("GET", "/api/private/me");
        report("api call carries x-user-id", r.status === 200 && r.body?.data?.me?.userId === "user-e2e", r);
        // A write: with VIA_TOKEN, the SDK's anti-csrf header gets it through.
        r = await call("POST", "/api/private/items", { name: "a" });
        report("a POST passes anti-CSRF", r.status === 200 && r.body?.data?.me?.userId === "user-e2e", r);
        await events();

        // The access token expires; the next call gets 401 through the proxy, the SDK refreshes
        // through the proxy (/auth/session/refresh) and retries; the user stays signed in.
        await sleep((TTL_SECS + 1.5) * 1000);
        r = await call("GET", "/api/private/me");
        const afterExpiry = await events();
        report(
            "access token expiry: refreshed and retried",
            r.status === 200 && r.body?.data?.me?.userId === "user-e2e" && afterExpiry.includes("REFRESH_SESSION"),
            { response: r, events: afterExpiry }
        );
        report("still signed in after the refresh", (await sdk("userId")) === "user-e2e", {});
        r = await call("GET", "/api/private/me");
        report("the refreshed session keeps working", r.status === 200 && r.body?.data?.me?.userId === "user-e2e", r);

        // A route whose claim the session lacks: 403 with the invalid-claim body, seen by the SDK.
        r = await call("GET", "/api/admin/stats");
        const claimEvents = await events();
        report(
            "missing claim: 403 invalid claim",
            r.status === 403 && r.body?.message === "invalid claim" && r.body?.claimValidationErrors?.[0]?.id === "st-role",
            { response: r, events: claimEvents }
        );
        report("the invalid claim reached the SDK", claimEvents.includes("API_INVALID_CLAIM"), { events: claimEvents });

        // Sign out through the proxy; then anonymous on an optional route, 401 on a required one.
        await sdk("signOut");
        report("signed out", !(await sdk("exists")), { events: await events() });
        r = await call("GET", "/api/public/me");
        report("after sign-out: anonymous", r.status === 200 && r.body?.data?.me?.userId === null, r);
        r = await call("GET", "/api/private/me");
        report("after sign-out: 401 on a required route", r.status === 401, r);

        // A session revoked at the core is refused on a check_database route, and the SDK's
        // refresh cannot bring it back.
        r = await call("POST", "/test/signin", { userId: "user-revoked", roles: ["user"] });
        const handle = r.body?.handle;
        r = await call("GET", "/api/checked/me");
        report("check_database route, live session", r.status === 200 && r.body?.data?.me?.userId === "user-revoked", r);
        const revoked = await (await fetch(`${SITE}/revoke/${handle}`, { method: "POST" })).json();
        r = await call("GET", "/api/checked/me");
        report("revoked session refused", r.status === 401 && revoked.revoked === true, { response: r, revoked });
        report("the revoked session is gone from the browser", !(await sdk("exists")), { events: await events() });

        report("no page errors", !consoleLines.some((l) => /Uncaught|TypeError|ReferenceError/.test(l)), { console: consoleLines.slice(-20) });
    } finally {
        await browser.close();
        fs.rmSync(profile, { recursive: true, force: true });
    }
    console.log(JSON.stringify({ done: true }));
}

main().catch((e) => {
    report("driver", false, { error: String(e && e.stack ? e.stack : e) });
    process.exit(1);
});
