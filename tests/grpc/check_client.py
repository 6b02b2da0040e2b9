#!/usr/bin/env python3
"""Independent gRPC client for envoy.service.auth.v3.Authorization/Check.

Built on Envoy's own generated protos (PyPI `xds-protos`), not on our Rust types, so the
end-to-end tests check the wire format against a second implementation. Run it with the grpc
venv's interpreter that scripts/install-test-tools sets up:

    source .cache/tools/env
    "$GRPC_PYTHON" tests/grpc/check_client.py 127.0.0.1:PORT < requests.jsonl
    "$GRPC_PYTHON" tests/grpc/check_client.py --reflection-check 127.0.0.1:PORT

Check mode reads one JSON request per stdin line (blank lines are skipped):

    {"method": "GET", "path": "/x?y=1", "headers": {"cookie": "sAccessToken=..."}}

Optional request keys: "host" (default "localhost"), "scheme" (default "http"), "protocol"
(default "HTTP/1.1"), "id", "body" (string), "header_map" ([[name, value], ...], sent as
HttpRequest.header_map the way Envoy does with encode_raw_headers: true), "context_extensions"
({k: v}), "source_address" / "destination_address" ("ip:port"). Header names are lower-cased,
as Envoy sends them.

It prints one JSON line per request:

    {"code": <int>,                 # CheckResponse.status.code (0 = OK = allow); for a failed
                                    # RPC, the transport's gRPC status code
     "ok": {"headers": {name: value},            # OkHttpResponse.headers (to the upstream)
            "headers_to_remove": [name, ...],
            "response_headers_to_add": {name: [value, ...]},   # to the client on success
            "header_options": [{"key", "value", "append", "append_action"}, ...]} | null,
     "denied": {"status": <int>,                 # DeniedHttpResponse.status.code (0 = unset,
                                                 # which Envoy turns into 403)
                "headers": {name: value},        # last value wins; see header_list
                "header_list": [[name, value], ...],
                "body": str} | null,
     "error": {...same shape as denied...} | null,   # CheckResponse.error_response
     "status_message": str,
     "dynamic_metadata": {...} | null,
     "rpc_error": {"code": int, "name": str, "details": str} | null}

Exit status: 0 when every line was answered (whatever the decision), 1 when an RPC failed,
2 on bad usage or input.

--reflection-check lists the server's services through gRPC server reflection (tries
grpc.reflection.v1 first, then v1alpha; the messages are identical) and prints
{"api": "v1"|"v1alpha", "services": [...]}; exit 0 when it could list them, 1 otherwise.
Add --expect SERVICE (repeatable) to also fail when a service is missing.
"""

import argparse
import json
import sys

try:
    import grpc
    from envoy.config.core.v3 import address_pb2, base_pb2
    from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
    from google.protobuf import json_format
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"check_client.py: {exc}; run it with the grpc venv's python "
        "(source .cache/tools/env; \"$GRPC_PYTHON\" tests/grpc/check_client.py ...)\n"
    )
    sys.exit(2)


# ----------------------------------------------------------------------------------------------
# Building the CheckRequest


def _socket_address(text, target):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address must be ip:port, got {text!r}")
    target.socket_address.address = host.strip("[]")
    target.socket_address.port_value = int(port)


def build_request(spec):
    if not isinstance(spec, dict):
        raise ValueError("each line must be a JSON object")
    req = external_auth_pb2.CheckRequest()
    attrs = req.attributes
    http = attrs.request.http
    http.method = str(spec.get("method", "GET")).upper()
    http.path = str(spec.get("path", "/"))
    http.host = str(spec.get("host", "localhost"))
    http.scheme = str(spec.get("scheme", "http"))
    http.protocol = str(spec.get("protocol", "HTTP/1.1"))
    if "id" in spec:
        http.id = str(spec["id"])
    headers = spec.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError("headers must be an object {name: value}")
    for name, value in headers.items():
        http.headers[str(name).lower()] = str(value)
    # Envoy always puts the pseudo-headers in the map too.
    http.headers.setdefault(":method", http.method)
    http.headers.setdefault(":path", http.path)
    http.headers.setdefault(":authority", http.host)
    http.headers.setdefault(":scheme", http.scheme)
    for pair in spec.get("header_map") or []:
        name, value = pair
        hv = http.header_map.headers.add()
        hv.key = str(name).lower()
        hv.raw_value = str(value).encode("utf-8")
    if "body" in spec:
        body = str(spec["body"])
        http.body = body
        http.size = len(body.encode("utf-8"))
    for key, value in (spec.get("context_extensions") or {}).items():
        attrs.context_extensions[str(key)] = str(value)
    if "source_address" in spec:
        _socket_address(spec["source_address"], attrs.source.address)
    if "destination_address" in spec:
        _socket_address(spec["destination_address"], attrs.destination.address)
    return req


# ----------------------------------------------------------------------------------------------
# Turning the CheckResponse into JSON


def _header_value(hv):
    # HeaderValue.raw_value takes precedence over value when set (Envoy's own rule).
    if hv.raw_value:
        return hv.raw_value.decode("utf-8", "replace")
    return hv.value


def _option_json(opt):
    return {
        "key": opt.header.key,
        "value": _header_value(opt.header),
        "append": opt.append.value if opt.HasField("append") else None,
        "append_action": base_pb2.HeaderValueOption.HeaderAppendAction.Name(opt.append_action),
    }


def _denied_json(denied):
    header_list = [[o.header.key, _header_value(o.header)] for o in denied.headers]
    return {
        "status": int(denied.status.code),
        "headers": {k: v for k, v in header_list},
        "header_list": header_list,
        "body": denied.body,
    }


def response_json(resp):
    out = {
        "code": int(resp.status.code),
        "ok": None,
        "denied": None,
        "error": None,
        "status_message": resp.status.message,
        "dynamic_metadata": None,
        "rpc_error": None,
    }
    which = resp.WhichOneof("http_response")
    if which == "ok_response":
        ok = resp.ok_response
        to_client = {}
        for opt in ok.response_headers_to_add:
            to_client.setdefault(opt.header.key, []).append(_header_value(opt.header))
        out["ok"] = {
            "headers": {o.header.key: _header_value(o.header) for o in ok.headers},
            "headers_to_remove": list(ok.headers_to_remove),
            "response_headers_to_add": to_client,
            "header_options": [_option_json(o) for o in ok.headers],
        }
    elif which == "denied_response":
        out["denied"] = _denied_json(resp.denied_response)
    elif which == "error_response":
        out["error"] = _denied_json(resp.error_response)
    if resp.HasField("dynamic_metadata"):
        out["dynamic_metadata"] = json_format.MessageToDict(resp.dynamic_metadata)
    return out


def rpc_error_json(err):
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    return {
        "code": int(code.value[0]),
        "ok": None,
        "denied": None,
        "error": None,
        "status_message": "",
        "dynamic_metadata": None,
        "rpc_error": {
            "code": int(code.value[0]),
            "name": code.name,
            "details": err.details() if hasattr(err, "details") else str(err),
        },
    }


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def run_checks(target, timeout):
    failed = False
    with grpc.insecure_channel(target) as channel:
        stub = external_auth_pb2_grpc.AuthorizationStub(channel)
        for lineno, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                req = build_request(json.loads(line))
            except (ValueError, TypeError) as exc:
                sys.stderr.write(f"check_client.py: line {lineno}: {exc}\n")
                return 2
            try:
                resp = stub.Check(req, timeout=timeout, wait_for_ready=False)
            except grpc.RpcError as err:
                failed = True
                emit(rpc_error_json(err))
                continue
            emit(response_json(resp))
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------
# Server reflection


def list_services(target, timeout):
    """Lists services with the reflection API, v1 first then v1alpha (same messages)."""
    from grpc_reflection.v1alpha import reflection_pb2

    last_err = None
    with grpc.insecure_channel(target) as channel:
        for api in ("v1", "v1alpha"):
            method = f"/grpc.reflection.{api}.ServerReflection/ServerReflectionInfo"
            call = channel.stream_stream(
                method,
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            try:
                responses = list(call(iter([request]), timeout=timeout))
            except grpc.RpcError as err:
                last_err = err
                if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                    continue
                raise
            services = []
            for resp in responses:
                if resp.HasField("error_response"):
                    raise RuntimeError(
                        f"reflection error {resp.error_response.error_code}: "
                        f"{resp.error_response.error_message}"
                    )
                services.extend(s.name for s in resp.list_services_response.service)
            return api, sorted(services)
    raise last_err


def run_reflection(target, timeout, expected):
    try:
        api, services = list_services(target, timeout)
    except (grpc.RpcError, RuntimeError) as err:
        details = err.details() if isinstance(err, grpc.RpcError) else str(err)
        emit({"api": None, "services": [], "error": details})
        return 1
    missing = [s for s in expected if s not in services]
    emit({"api": api, "services": services, "missing": missing})
    return 1 if missing else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="HOST:PORT of the gRPC authorizer")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-RPC deadline, seconds")
    parser.add_argument("--reflection-check", action="store_true",
                        help="list services through server reflection instead of calling Check")
    parser.add_argument("--expect", action="append", default=[], metavar="SERVICE",
                        help="with --reflection-check: fail unless SERVICE is listed")
    args = parser.parse_args(argv)
    if args.reflection_check:
        return run_reflection(args.target, args.timeout, args.expect)
    return run_checks(args.target, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
