"""Seed baseline: the Python Lambda authorizer handler from the SuperTokens docs
("Using Lambda Authorizers"): FastAPI + Mangum + get_session(request,
session_required=False), for benchmarking.

The docs import a `config` module; its values are inlined here (core URL from
env CORE_URI, same appInfo as the Node seed handler, framework "fastapi",
mode "asgi").

Deviations from the published code, both marked "FIX" below:
  1. The docs index response["headers"]["set-cookie"], which raises KeyError on
     every call that sets no cookie (i.e. almost all of them). We read it with a
     default ("" when absent; several cookies are joined with ", " as in Node).
  2. The docs' route raises Exception("Unauthorized") for TRY_REFRESH_TOKEN /
     UNAUTHORISED. Through Starlette + Mangum that exception becomes a plain-text
     500 "Internal Server Error" response, and json.loads(response["body"]) then
     fails with a JSONDecodeError, so the Lambda never fails with "Unauthorized"
     (API Gateway would answer 500, not 401). A tiny ASGI wrapper records the
     route's exception and handler() re-raises it, which is what the docs intend.
Everything else (a new Mangum per call, the middleware stack, the policy shape)
is as published.
"""

import nest_asyncio
import json
import os

nest_asyncio.apply()

from typing import Any, Dict, Optional

from fastapi import FastAPI, Request
from mangum import Mangum
from starlette.middleware.cors import CORSMiddleware

from supertokens_python import InputAppInfo, SupertokensConfig, get_all_cors_headers, init
from supertokens_python.framework.fastapi import get_middleware
from supertokens_python.recipe import session
from supertokens_python.recipe.session.exceptions import (
    InvalidClaimsError,
    TryRefreshTokenError,
    UnauthorisedError,
)
from supertokens_python.recipe.session.syncio import get_session

_core_uri = os.environ.get("CORE_URI")
if not _core_uri:
    raise RuntimeError("CORE_URI env var is not set (URL of the SuperTokens core, e.g. http://127.0.0.1:3567)")

app_info = InputAppInfo(
    app_name="session-authorizer-seed",
    api_domain="http://localhost:3001",
    website_domain="http://localhost:3000",
    api_base_path="/auth",
)

init(
    supertokens_config=SupertokensConfig(connection_uri=_core_uri),
    app_info=app_info,
    framework="fastapi",
    recipe_list=[session.init()],
    mode="asgi",
)

app = FastAPI(title="SuperTokens Example")


def generate_policy(principal_id: str, effect: str, resource: str, context: Optional[Dict[str, Any]]):
    policy_document = {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
    }
    return {
        "principalId": principal_id,
        "policyDocument": policy_document,
        "context": context or {},
    }


def generate_allow(principal_id: str, resource: str, context: Optional[Dict[str, Any]] = None):
    return generate_policy(principal_id, "Allow", resource, context)


def generate_deny(principal_id: str, resource: str, context: Optional[Dict[str, Any]] = None):
    return generate_policy(principal_id, "Deny", resource, context)


# This route acts as the authorizer for API Gateway.
@app.get("/{full_path:path}")
def handle_auth(request: Request, full_path: str):
    event = request.scope["aws.event"]
    method_arn = event.get("methodArn")
    try:
        s = get_session(request, session_required=False)
        if s:
            return generate_allow(s.get_user_id(), method_arn)
        # Requests without a session are allowed with an empty principal.
        return generate_allow("", method_arn)
    except Exception as e:
        if isinstance(e, (TryRefreshTokenError, UnauthorisedError)):
            raise Exception("Unauthorized")
        if isinstance(e, InvalidClaimsError):
            claim_validation_errors = [err.to_json() for err in e.payload]
            return generate_deny(
                "",
                method_arn,
                {"body": {"message": "invalid claims", "claimValidationErrors": claim_validation_errors}},
            )
        raise e


app.add_middleware(get_middleware())

app = CORSMiddleware(
    app=app,
    allow_origins=[app_info.website_domain],
    allow_credentials=True,
    allow_methods=["GET", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"],
    allow_headers=["Content-Type"] + get_all_cors_headers(),
)


# FIX 2: remember an exception escaping the app (Starlette has already sent its
# 500 by then) so handler() can re-raise it instead of parsing "Internal Server
# Error" as JSON. Swallowing it here also keeps Mangum from logging a traceback
# per call. Mangum runs the app on an event loop in the calling thread and calls
# are sequential, so a module-level slot is enough.
_app_error: Dict[str, Optional[BaseException]] = {"error": None}
_inner_app = app


async def app(scope, receive, send):  # type: ignore[no-redef]
    try:
        await _inner_app(scope, receive, send)
    except Exception as e:  # noqa: BLE001
        if scope.get("type") != "http":
            raise
        _app_error["error"] = e


def _set_cookie_header(response: Dict[str, Any]) -> str:
    # FIX 1: the docs do response["headers"]["set-cookie"] (KeyError when absent).
    headers = response.get("headers") or {}
    if "set-cookie" in headers:
        return headers["set-cookie"]
    multi = (response.get("multiValueHeaders") or {}).get("set-cookie")
    return ", ".join(multi) if multi else ""


def handler(event: Dict[str, Any], context: Any):
    _app_error["error"] = None
    mangum_handler = Mangum(app)
    response: Dict[str, Any] = mangum_handler(event, context)
    if _app_error["error"] is not None:  # FIX 2
        err, _app_error["error"] = _app_error["error"], None
        raise err
    if event.get("methodArn"):
        gateway_response = json.loads(response["body"])
        # setCookie goes into the context, to be mapped to a Set-Cookie header on
        # the response (get_session sets cookies on the first call after a refresh).
        gateway_response["context"]["setCookie"] = _set_cookie_header(response)
        return gateway_response
    return response
