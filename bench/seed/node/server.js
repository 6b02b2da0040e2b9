"use strict";
/*
 * "The Node seed handler served over HTTP": a minimal single-process Node http
 * server around handler.js, for throughput comparisons.
 *
 *   PORT=8081 CORE_URI=http://127.0.0.1:3567 node server.js
 *
 * POST / with an API Gateway REST REQUEST authorizer event as the JSON body:
 *   200 + policy JSON                    when the handler returns
 *   401 {"message":"Unauthorized"}       when the handler throws Error("Unauthorized")
 *   500 {"message":...}                  on any other error (bad JSON, SDK/core errors)
 * Prints "LISTENING <port>" on stdout once it accepts connections.
 */

const http = require("http");
const { handler } = require("./handler");

const port = Number(process.env.PORT || 0);

function send(res, status, obj) {
    const data = JSON.stringify(obj);
    res.writeHead(status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(data),
    });
    res.end(data);
}

async function handle(req, res, raw) {
    if (req.method !== "POST" || (req.url || "").split("?")[0] !== "/") {
        send(res, 404, { message: "Not Found" });
        return;
    }
    let event;
    try {
        // Freshly parsed per request, so the SDK's mutation of the event stays local.
        event = JSON.parse(raw);
    } catch (err) {
        send(res, 500, { message: "invalid JSON body: " + err.message });
        return;
    }
    try {
        send(res, 200, await handler(event));
    } catch (err) {
        if (err && err.message === "Unauthorized") {
            send(res, 401, { message: "Unauthorized" });
        } else {
            send(res, 500, { message: err && err.message !== undefined ? String(err.message) : String(err) });
        }
    }
}

const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
        handle(req, res, Buffer.concat(chunks).toString("utf8")).catch((err) => {
            try {
                send(res, 500, { message: String(err) });
            } catch (_) {
                res.destroy();
            }
        });
    });
    req.on("error", () => res.destroy());
});

server.keepAliveTimeout = 65000;
server.listen(port, "127.0.0.1", () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
});

const shutdown = () => server.close(() => process.exit(0));
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
