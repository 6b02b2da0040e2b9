"use strict";
/*
 * Test oracle for session-authorizer.
 *
 * Runs the real supertokens-node SDK (pinned in package.json) behind a tiny
 * HTTP server, executing the Node Lambda-authorizer handler from the
 * SuperTokens docs ("Using Lambda Authorizers") so that Rust integration
 * tests can compare their decisions against the SDK's.
 *
 * Protocol: see README.md in this folder.
 */

const http = require("http");

const supertokens = require("supertokens-node");
const Session = require("supertokens-node/recipe/session");
const { PrimitiveClaim, PrimitiveArrayClaim, BooleanClaim } = require("supertokens-node/recipe/session/claims");
const EmailVerification = require("supertokens-node/recipe/emailverification");
const UserRoles = require("supertokens-node/recipe/userroles");
const MultiFactorAuth = require("supertokens-node/recipe/multifactorauth");

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

function readConfig() {
    const raw = process.env.ORACLE_CONFIG;
    if (raw === undefined || raw === "") {
        throw new Error("ORACLE_CONFIG env var is not set");
    }
    const cfg = JSON.parse(raw);
    if (typeof cfg.connectionURI !== "string") {
        throw new Error("ORACLE_CONFIG.connectionURI must be a string");
    }
    return cfg;
}

function isSet(v) {
    return v !== undefined && v !== null;
}

function initSuperTokens(cfg) {
    const sessionConfig = {};
    if (isSet(cfg.antiCsrf)) {
        sessionConfig.antiCsrf = cfg.antiCsrf;
    }
    if (isSet(cfg.useDynamicAccessTokenSigningKey)) {
        sessionConfig.useDynamicAccessTokenSigningKey = cfg.useDynamicAccessTokenSigningKey;
    }
    if (isSet(cfg.cookieDomain)) {
        sessionConfig.cookieDomain = cfg.cookieDomain;
    }

    const recipeList = [Session.init(sessionConfig)];
    if (isSet(cfg.emailVerification)) {
        recipeList.push(EmailVerification.init({ mode: cfg.emailVerification }));
    }
    recipeList.push(UserRoles.init());
    if (cfg.mfa === true) {
        recipeList.push(MultiFactorAuth.init());
    }

    supertokens.init({
        framework: "awsLambda",
        supertokens: { connectionURI: cfg.connectionURI },
        appInfo: {
            appName: "session-authorizer-oracle",
            apiDomain: isSet(cfg.apiDomain) ? cfg.apiDomain : "http://localhost:3001",
            websiteDomain: isSet(cfg.websiteDomain) ? cfg.websiteDomain : "http://localhost:3000",
            apiBasePath: isSet(cfg.apiBasePath) ? cfg.apiBasePath : "/auth",
        },
        // Only affects the dashboard recipe's analytics; set so the oracle never phones home.
        telemetry: false,
        recipeList,
    });
}

// ---------------------------------------------------------------------------
// The docs' Node Lambda authorizer handler (logic reproduced as published).
// The only difference: getSession options come from the oracle request, and
// the getSession function is injected so the harness can observe the
// original SDK error without altering the handler's control flow.
// ---------------------------------------------------------------------------

function makeAuthorizerHandler(getSession, sessionOptions) {
    return async function (event) {
        try {
            const session = await getSession(event, event, sessionOptions);

            if (session) {
                // We need to add setCookie to the context, since later we will be mapping this to a Set-Cookie header on the response
                // getSession has to set cookies on the first call after a refresh.
                return generateAllow(session.getUserId(), event.methodArn, {
                    setCookie: event.supertokens.response.cookies.join(", "),
                });
            } else {
                // You can allow requests without sessions
                return generateAllow("", event.methodArn, {
                    setCookie: event.supertokens.response.cookies.join(", "),
                });
            }
        } catch (ex) {
            if (ex.type === "TRY_REFRESH_TOKEN" || ex.type === "UNAUTHORISED") {
                throw new Error("Unauthorized");
            }
            if (ex.type === "INVALID_CLAIMS") {
                return generateDeny("", event.methodArn, {
                    body: JSON.stringify({
                        message: "invalid claim",
                        claimValidationErrors: ex.payload,
                    }),
                    setCookie: event.supertokens.response.cookies.join(", "),
                });
            }
            throw ex;
        }
    };
}

// Help function to generate an IAM policy
const generatePolicy = function (principalId, effect, resource, context) {
    // Required output:
    const policyDocument = {
        Version: "2012-10-17",
        Statement: [],
    };
    const statementOne = {
        Action: "execute-api:Invoke",
        Effect: effect,
        Resource: resource,
    };
    policyDocument.Statement[0] = statementOne;
    const authResponse = {
        principalId: principalId,
        policyDocument: policyDocument,
        // Optional output with custom properties of the String, Number or Boolean type.
        context,
    };
    return authResponse;
};

const generateAllow = function (principalId, resource, context) {
    return generatePolicy(principalId, "Allow", resource, context);
};

const generateDeny = function (principalId, resource, context) {
    return generatePolicy(principalId, "Deny", resource, context);
};

// ---------------------------------------------------------------------------
// Validator specs -> SDK claim validators
// ---------------------------------------------------------------------------

const ARRAY_KINDS = ["includes", "excludes", "includesAll", "includesAny", "excludesAll"];

class SpecError extends Error {}

function requireArray(spec) {
    if (!Array.isArray(spec.value)) {
        throw new SpecError(`validator ${JSON.stringify(spec)}: kind ${spec.kind} needs an array value`);
    }
}

function arrayValidator(claim, spec) {
    if (!ARRAY_KINDS.includes(spec.kind)) {
        throw new SpecError(`validator ${JSON.stringify(spec)}: unsupported kind for array claim ${spec.key || spec.claim}`);
    }
    if (spec.kind === "includesAll" || spec.kind === "includesAny" || spec.kind === "excludesAll") {
        requireArray(spec);
    }
    return claim.validators[spec.kind](spec.value, spec.maxAgeInSeconds, spec.id);
}

function booleanValidator(claim, spec) {
    switch (spec.kind) {
        case "isTrue":
            return claim.validators.isTrue(spec.maxAgeInSeconds, spec.id);
        case "isFalse":
            return claim.validators.isFalse(spec.maxAgeInSeconds, spec.id);
        case "hasValue":
            return claim.validators.hasValue(spec.value, spec.maxAgeInSeconds, spec.id);
        default:
            throw new SpecError(`validator ${JSON.stringify(spec)}: unsupported kind for boolean claim`);
    }
}

const fetchNothing = async () => undefined;

function mapValidator(spec) {
    if (spec === null || typeof spec !== "object" || typeof spec.claim !== "string" || typeof spec.kind !== "string") {
        throw new SpecError(`bad validator spec ${JSON.stringify(spec)}: needs string "claim" and "kind"`);
    }
    switch (spec.claim) {
        case "st-ev":
            if (spec.kind === "isVerified") {
                return EmailVerification.EmailVerificationClaim.validators.isVerified(10, spec.maxAgeInSeconds);
            }
            return booleanValidator(EmailVerification.EmailVerificationClaim, spec);
        case "st-role":
            return arrayValidator(UserRoles.UserRoleClaim, spec);
        case "st-perm":
            return arrayValidator(UserRoles.PermissionClaim, spec);
        case "st-mfa":
            if (spec.kind === "mfaCompleted") {
                return MultiFactorAuth.MultiFactorAuthClaim.validators.hasCompletedMFARequirementsForAuth(spec.id);
            }
            if (spec.kind === "mfaRequirementList") {
                requireArray(spec);
                return MultiFactorAuth.MultiFactorAuthClaim.validators.hasCompletedRequirementList(spec.value, spec.id);
            }
            throw new SpecError(`validator ${JSON.stringify(spec)}: unsupported kind for st-mfa`);
        default: {
            if (spec.kind === "hasValue") {
                const claim = new PrimitiveClaim({ key: spec.claim, fetchValue: fetchNothing });
                return claim.validators.hasValue(spec.value, spec.maxAgeInSeconds, spec.id);
            }
            if (spec.kind === "isTrue" || spec.kind === "isFalse") {
                const claim = new BooleanClaim({ key: spec.claim, fetchValue: fetchNothing });
                return booleanValidator(claim, spec);
            }
            if (ARRAY_KINDS.includes(spec.kind)) {
                const claim = new PrimitiveArrayClaim({ key: spec.claim, fetchValue: fetchNothing });
                return arrayValidator(claim, spec);
            }
            throw new SpecError(`validator ${JSON.stringify(spec)}: unsupported kind for custom claim`);
        }
    }
}

function buildSessionOptions(options) {
    const out = {};
    if (options.sessionRequired !== undefined) {
        if (typeof options.sessionRequired !== "boolean") {
            throw new SpecError("options.sessionRequired must be a boolean");
        }
        out.sessionRequired = options.sessionRequired;
    } else {
        out.sessionRequired = false;
    }
    if (options.checkDatabase !== undefined) {
        if (typeof options.checkDatabase !== "boolean") {
            throw new SpecError("options.checkDatabase must be a boolean");
        }
        out.checkDatabase = options.checkDatabase;
    }
    if (options.validators !== undefined && options.validators !== null) {
        if (!Array.isArray(options.validators)) {
            throw new SpecError("options.validators must be an array");
        }
        const mapped = options.validators.map(mapValidator);
        out.overrideGlobalClaimValidators = (globalValidators) => [...globalValidators, ...mapped];
    }
    return out;
}

// ---------------------------------------------------------------------------
// /authorize
// ---------------------------------------------------------------------------

async function authorize(body) {
    if (body === null || typeof body !== "object" || body.event === null || typeof body.event !== "object") {
        throw new SpecError('request body must be {"event": {...}, "options": {...}}');
    }
    const options = body.options === undefined || body.options === null ? {} : body.options;
    if (typeof options !== "object" || Array.isArray(options)) {
        throw new SpecError("options must be an object");
    }
    const sessionOptions = buildSessionOptions(options);

    // The SDK mutates the event (event.supertokens.response...), so work on a copy.
    const event = structuredClone(body.event);

    // Observe the original SDK error (the handler replaces some with Error("Unauthorized")).
    let lastSdkError;
    const tracingGetSession = async (req, res, opts) => {
        try {
            return await Session.getSession(req, res, opts);
        } catch (err) {
            lastSdkError = err;
            throw err;
        }
    };

    const handler = makeAuthorizerHandler(tracingGetSession, sessionOptions);
    const sdkState = () => (event.supertokens && event.supertokens.response) || { headers: [], cookies: [] };

    try {
        const response = await handler(event);
        return {
            outcome: "response",
            response,
            responseHeaders: sdkState().headers,
            cookies: sdkState().cookies,
        };
    } catch (err) {
        const original = lastSdkError !== undefined ? lastSdkError : err;
        const result = {
            outcome: "error",
            message: err && err.message !== undefined ? String(err.message) : String(err),
        };
        if (original && original.type !== undefined) {
            result.sdkType = original.type;
        }
        if (original && original.message !== undefined) {
            result.sdkMessage = String(original.message);
        }
        if (original && original.payload !== undefined) {
            result.sdkPayload = original.payload;
        }
        result.responseHeaders = sdkState().headers;
        result.cookies = sdkState().cookies;
        return result;
    }
}

// ---------------------------------------------------------------------------
// HTTP server
// ---------------------------------------------------------------------------

function sendJSON(res, status, obj) {
    const data = JSON.stringify(obj);
    res.writeHead(status, {
        "content-type": "application/json; charset=utf-8",
        "content-length": Buffer.byteLength(data),
    });
    res.end(data);
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        req.on("data", (c) => chunks.push(c));
        req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
        req.on("error", reject);
    });
}

async function route(req, res) {
    const path = (req.url || "").split("?")[0];
    if (path === "/health" && (req.method === "GET" || req.method === "HEAD")) {
        sendJSON(res, 200, { status: "OK" });
        return;
    }
    if (path === "/authorize" && req.method === "POST") {
        let body;
        try {
            body = JSON.parse(await readBody(req));
        } catch (err) {
            sendJSON(res, 500, { harnessError: "invalid JSON body: " + err.message });
            return;
        }
        let result;
        try {
            result = await authorize(body);
        } catch (err) {
            sendJSON(res, 500, { harnessError: err && err.stack ? err.stack : String(err) });
            return;
        }
        sendJSON(res, 200, result);
        return;
    }
    sendJSON(res, 404, { harnessError: `no route ${req.method} ${path}` });
}

function main() {
    const cfg = readConfig();
    initSuperTokens(cfg);

    const server = http.createServer((req, res) => {
        route(req, res).catch((err) => {
            try {
                sendJSON(res, 500, { harnessError: err && err.stack ? err.stack : String(err) });
            } catch (_) {
                res.destroy();
            }
        });
    });
    server.listen(0, "127.0.0.1", () => {
        process.stdout.write(`ORACLE_LISTENING ${server.address().port}\n`);
    });

    const shutdown = () => server.close(() => process.exit(0));
    process.on("SIGTERM", shutdown);
    process.on("SIGINT", shutdown);
}

try {
    main();
} catch (err) {
    process.stderr.write("oracle harness failed to start: " + (err && err.stack ? err.stack : String(err)) + "\n");
    process.exit(1);
}
