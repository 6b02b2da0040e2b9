"use strict";
/*
 * The app of the end-to-end suite, behind each real proxy:
 *
 * - the API (API_PORT, reached through the proxy at API_ORIGIN): the real supertokens-node SDK
 *   with Express serving /auth/* (refresh, sign-out), a test sign-in route that calls
 *   createNewSession, a test revocation route, and /api/* answering like an AppSync resolver
 *   echo with the identity the proxy passed on (x-user-id);
 * - the website (SITE_PORT, SITE_ORIGIN, another origin): a page with the real frontend SDK
 *   (supertokens-web-js), which drive.js opens in headless Chromium.
 *
 * Every request the API receives is recorded; GET /log on the website port lists them (the
 * test reads it directly, not through the proxy). Prints READY when both listen.
 */
const fs = require("fs");
const path = require("path");
const express = require("express");
const cors = require("cors");
const supertokens = require("supertokens-node");
const Session = require("supertokens-node/recipe/session");
const { middleware, errorHandler } = require("supertokens-node/framework/express");

const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
};
const CORE_URI = env("CORE_URI");
const API_PORT = Number(env("API_PORT"));
const SITE_PORT = Number(env("SITE_PORT"));
const API_ORIGIN = env("API_ORIGIN");
const SITE_ORIGIN = env("SITE_ORIGIN");
const ANTI_CSRF = env("ANTI_CSRF");

supertokens.init({
    framework: "express",
    supertokens: { connectionURI: CORE_URI },
    appInfo: { appName: "session-authorizer e2e", apiDomain: API_ORIGIN, websiteDomain: SITE_ORIGIN, apiBasePath: "/auth" },
    recipeList: [Session.init({ antiCsrf: ANTI_CSRF, getTokenTransferMethod: () => "any" })],
    telemetry: false,
});

const seen = [];
const api = express();
api.use((req, res, next) => {
    seen.push({
        method: req.method,
        path: req.originalUrl,
        userId: req.headers["x-user-id"] || null,
        origin: req.headers["origin"] || null,
    });
    next();
});
api.use(cors({ origin: SITE_ORIGIN, allowedHeaders: ["content-type", ...supertokens.getAllCORSHeaders()], credentials: true }));
api.use(middleware());
api.use(express.json());
api.post("/test/signin", async (req, res, next) => {
    try {
        const { userId, roles } = req.body;
        const payload = { "st-role": { v: roles, t: Date.now() } };
        const session = await Session.createNewSession(req, res, "public", supertokens.convertToRecipeUserId(userId), payload);
        res.json({ handle: session.getHandle() });
    } catch (e) {
        next(e);
    }
});
api.all("/api/{*rest}", (req, res) => {
    res.json({ data: { me: { userId: req.headers["x-user-id"] || null } }, path: req.originalUrl, method: req.method });
});
api.use(errorHandler());
api.use((err, req, res, next) => {
    res.status(500).json({ message: String(err) });
});

const site = express();
const bundles = path.join(path.dirname(require.resolve("supertokens-web-js/package.json")), "bundle");
site.get("/sdk/:name.js", (req, res) => {
    const file = fs.readdirSync(bundles).find((f) => f.startsWith(`${req.params.name}.`) && f.endsWith(".js"));
    if (!file) return res.status(404).end();
    res.type("application/javascript").send(fs.readFileSync(path.join(bundles, file)));
});
site.get("/", (req, res) => res.sendFile(path.join(__dirname, "site", "index.html")));
site.get("/log", (req, res) => res.json(seen));
site.post("/revoke/:handle", async (req, res) => {
    res.json({ revoked: await Session.revokeSession(req.params.handle) });
});

let up = 0;
const ready = () => {
    up += 1;
    if (up === 2) console.log("READY");
};
api.listen(API_PORT, "127.0.0.1", ready);
site.listen(SITE_PORT, "127.0.0.1", ready);
