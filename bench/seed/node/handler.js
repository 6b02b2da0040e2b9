"use strict";
/*
 * Seed baseline: the Node Lambda authorizer handler from the SuperTokens docs
 * ("Using Lambda Authorizers"), written in plain CommonJS for benchmarking.
 *
 * Logic as published: Session.getSession(event, event, { sessionRequired: false });
 * Allow with the user id (or "" when there is no session) and the SDK's cookies in
 * context.setCookie; TRY_REFRESH_TOKEN / UNAUTHORISED -> throw Error("Unauthorized");
 * INVALID_CLAIMS -> Deny with the claim errors in context.body; anything else rethrown.
 *
 * Config: supertokens.connectionURI from env CORE_URI (the core, or a stub of it).
 */

const supertokens = require("supertokens-node");
const Session = require("supertokens-node/recipe/session");

const coreURI = process.env.CORE_URI;
if (!coreURI) {
    throw new Error("CORE_URI env var is not set (URL of the SuperTokens core, e.g. http://127.0.0.1:3567)");
}

supertokens.init({
    framework: "awsLambda",
    supertokens: {
        connectionURI: coreURI,
    },
    appInfo: {
        appName: "session-authorizer-seed",
        apiDomain: "http://localhost:3001",
        websiteDomain: "http://localhost:3000",
        apiBasePath: "/auth",
    },
    recipeList: [Session.init()],
});

// Help function to generate an IAM policy
function generatePolicy(principalId, effect, resource, context) {
    // Required output:
    const policyDocument = {
        Version: "2012-10-17",
        Statement: [],
    };
    policyDocument.Statement[0] = {
        Action: "execute-api:Invoke",
        Effect: effect,
        Resource: resource,
    };
    return {
        principalId: principalId,
        policyDocument: policyDocument,
        // Optional output with custom properties of the String, Number or Boolean type.
        context: context,
    };
}

function generateAllow(principalId, resource, context) {
    return generatePolicy(principalId, "Allow", resource, context);
}

function generateDeny(principalId, resource, context) {
    return generatePolicy(principalId, "Deny", resource, context);
}

// Note: the SDK mutates the event (it attaches event.supertokens), so callers that
// reuse one event object must pass a fresh copy per call.
async function handler(event) {
    try {
        const session = await Session.getSession(event, event, { sessionRequired: false });
        // getSession has to set cookies on the first call after a refresh; they are
        // mapped to a Set-Cookie header by API Gateway from context.setCookie.
        const setCookie = event.supertokens.response.cookies.join(", ");
        if (session) {
            return generateAllow(session.getUserId(), event.methodArn, { setCookie });
        }
        // Requests without a session are allowed with an empty principal.
        return generateAllow("", event.methodArn, { setCookie });
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
}

module.exports = { handler };
