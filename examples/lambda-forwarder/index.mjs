// An API Gateway / AppSync Lambda authorizer that hands the event to session-authorizer's
// POST /authorize and returns its answer: the whole SuperTokens SDK, its init and its core round
// trips leave the Lambda; the decision (JWKS cache, verified-session cache) lives in the
// long-running service. Node.js 18+ (global fetch), no dependencies.
//
// Environment: SESSION_AUTHORIZER_URL, e.g. http://session-authorizer.internal:8080/authorize
// (the Lambda needs a network path to it, e.g. the same VPC), SESSION_AUTHORIZER_TIMEOUT_MS
// (default 2000). docs/migrating-from-lambda.md explains the mapping; tests/lambda_forwarder.rs
// runs this file against the service.
const url = process.env.SESSION_AUTHORIZER_URL;
const timeoutMs = Number(process.env.SESSION_AUTHORIZER_TIMEOUT_MS || 2000);

export const handler = async (event) => {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(event),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.status === 200) {
    // Allow or Deny policy (context.setCookie, context.body on invalid claims), HTTP API simple
    // response, or AppSync response: returned as is.
    return await res.json();
  }
  if (res.status === 401) {
    // Where the docs' authorizer throws "Unauthorized": API Gateway answers 401 (Gateway
    // Response UNAUTHORIZED) and does not cache it.
    throw new Error("Unauthorized");
  }
  // 400 (not an authorizer event), 413, 5xx (core down): API Gateway answers 500. Fail closed.
  throw new Error(`session-authorizer answered ${res.status}: ${await res.text()}`);
};
