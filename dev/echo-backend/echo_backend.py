#!/usr/bin/env python3
"""An AppSync-like echo backend for the dev gateway: standard library only.

Every request (any method, any path) is answered 200 with a GraphQL-shaped JSON body that says who
the gateway said the caller is, from the identity headers the authorizer set:

    {"data": {"me": {"userId": "alice", "tenantId": "public", "sessionHandle": "..."}},
     "request": {"method": "POST", "path": "/graphql", "headers": {...}}}

`userId` is null when the request arrived without `x-user-id` (an anonymous caller on an optional
route). The gateway must make sure a client-sent `x-user-id` never arrives here.

Run:  python3 dev/echo-backend/echo_backend.py --host 127.0.0.1 --port 8000
      (PORT and HOST environment variables work too). It prints one line,
      `echo-backend listening on http://HOST:PORT`, once it accepts connections.

With --jwks-url (and --audience, --issuer) it also checks the authorizer's identity assertion
(`[assertion]`, header `x-session-assertion`) as a backend should, with PyJWT (pip install
"pyjwt[crypto]"): signature against the JWKS, `aud`, `iss`, `exp`, and answers what it found:

    "assertion": {"valid": true, "sub": "alice", "claims": {...}}   or
    "assertion": {"valid": false, "error": "Signature has expired"}  or  "assertion": null
"""

import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IDENTITY = {"userId": "x-user-id", "tenantId": "x-tenant-id", "sessionHandle": "x-session-handle"}
ASSERTION_HEADER = "x-session-assertion"
MAX_BODY = 1 << 20
# Set by main() when --jwks-url is given: (PyJWKClient, audience, issuer).
VERIFIER = None


def check_assertion(headers):
    """The identity assertion as a backend verifies it: a key of the authorizer's JWKS by `kid`
    (fetched again on an unknown one), ES256 or EdDSA only, then aud, iss and exp."""
    if VERIFIER is None:
        return None
    values = headers.get_all(ASSERTION_HEADER) or []
    if not values:
        return None
    if len(values) > 1:
        return {"valid": False, "error": "more than one assertion header"}
    import jwt  # PyJWT, only needed with --jwks-url

    client, audience, issuer = VERIFIER
    try:
        key = client.get_signing_key_from_jwt(values[0])
        claims = jwt.decode(
            values[0],
            key.key,
            algorithms=["ES256", "EdDSA"],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except Exception as e:  # every refusal is an answer, not a crash
        return {"valid": False, "error": "%s: %s" % (type(e).__name__, e)}
    return {"valid": True, "sub": claims["sub"], "claims": claims}


class Handler(BaseHTTPRequestHandler):
    server_version = "echo-backend/1"
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(min(length, MAX_BODY)) if length else b""
        query = None
        if body:
            try:
                query = json.loads(body).get("query")
            except (ValueError, AttributeError):
                query = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        me = {field: headers.get(name) for field, name in IDENTITY.items()}
        payload = {
            "data": {"me": me},
            "request": {"method": self.command, "path": self.path, "query": query, "headers": headers},
            "assertion": check_assertion(self.headers),
        }
        out = json.dumps(payload, sort_keys=True).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def log_message(self, fmt, *args):  # one short line per request on stderr
        sys.stderr.write("echo-backend: %s\n" % (fmt % args))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--jwks-url", help="check x-session-assertion against this JWKS (needs PyJWT)")
    parser.add_argument("--audience", default="backend")
    parser.add_argument("--issuer", default="session-authorizer")
    args = parser.parse_args()
    if args.jwks_url:
        import jwt

        global VERIFIER
        VERIFIER = (jwt.PyJWKClient(args.jwks_url, cache_keys=True, lifespan=60), args.audience, args.issuer)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    # Stop cleanly on SIGTERM (docker stop, the dev gateway's cleanup) as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    host, port = server.server_address[:2]
    print("echo-backend listening on http://%s:%d" % (host, port), flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
