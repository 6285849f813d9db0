#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a registry, for the tests.

    faultproxy.py --upstream 127.0.0.1:5000 --port-file P --log L [--rules R] [--token]
                  [--tls-cert C --tls-key K]

Listens on a free 127.0.0.1 port (written to the port file once it listens)
and forwards every request to the upstream registry over plain HTTP,
keeping the client's Host header (so that the registry's upload Locations
point back at the proxy).

Rules (a JSON list, or {"generation": N, "rules": [...]}, in the file
--rules names, re-read whenever it changes, which also resets their
counters) decide faults; the first rule whose `method` (optional) and
`path` (a regular expression searched in the path with its query) match
decides, `skip` matches pass untouched, then `times` (default: always)
matches get the fault. A rule with `window` is a rate limit: the first
match starts it, and every request (any method) whose path matches
`window_path` (default: `path`) gets the fault for `window` seconds; then
the rule is spent.

    {"method": "HEAD", "path": "^/v2/demo/worker/manifests/", "times": 2,
     "fault": "status", "status": 503}
    fault: "status" (with "status": 500/502/503, or 429 and "retry_after": N;
           "code": the registry error code in the body, e.g. MANIFEST_BLOB_UNKNOWN),
           "reset" (TCP RST, nothing answered), "stall" ("seconds": N, then
           the connection is closed unanswered), "truncate" (the upstream's
           answer cut in half, then closed), "delay" ("seconds": N, then
           forwarded as usual).

With --token the proxy is also a Bearer token realm: /v2/ requests need a
token it issued (`GET /token?service=…&scope=repository:NAME:ACTIONS`)
covering the repository and action, else 401 with a `WWW-Authenticate:
Bearer realm=…` challenge; requests go upstream without the token.

With --tls-cert/--tls-key the proxy speaks HTTPS, and answers a plain HTTP
request as Go's servers (the registry's) do: 400 "Client sent an HTTP
request to an HTTPS server.".

Every request, fault and token is one JSON line in the log.
"""

import argparse
import http.client
import json
import os
import re
import secrets
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}

START = time.monotonic()
LOCK = threading.Lock()
RULES = []  # [{"rule": {...}, "seen": 0, "done": 0}]
TOKENS = {}  # token -> {repository: set(actions)}
LOG = None
ARGS = None
TLS = None  # the server's ssl.SSLContext with --tls-cert


def log(agent=None, **entry):
    entry["t"] = round(time.monotonic() - START, 4)
    if agent:
        entry["agent"] = agent
    line = json.dumps(entry, sort_keys=True)
    with LOCK:
        LOG.write(line + "\n")
        LOG.flush()


RULES_SEEN = [None]  # the rules file's text last read


def reload_rules():
    """Re-reads the rules file if it changed (the test writes it through a rename)."""
    if not ARGS.rules:
        return
    try:
        with open(ARGS.rules) as f:
            text = f.read()
    except OSError:
        text = "[]"
    with LOCK:
        if text == RULES_SEEN[0]:
            return
        RULES_SEEN[0] = text
        RULES.clear()
        doc = json.loads(text or "[]")
        for r in doc["rules"] if isinstance(doc, dict) else doc:
            RULES.append({"rule": r, "seen": 0, "done": 0, "re": re.compile(r["path"])})
        entry = {"t": round(time.monotonic() - START, 4), "control": True, "rules": len(RULES)}
        LOG.write(json.dumps(entry) + "\n")
        LOG.flush()


def pick(method, path):
    """The fault for this request (a rule and its index), or None."""
    with LOCK:
        now = time.monotonic()
        for i, r in enumerate(RULES):
            rule = r["rule"]
            since = r.get("since")
            if since is not None and now - since < rule["window"]:
                # Inside a rate limit's window: everything it covers.
                if re.search(rule.get("window_path", rule["path"]), path):
                    r["done"] += 1
                    return i, rule
                continue
            if since is not None:
                continue
            if rule.get("method") and rule["method"] != method:
                continue
            if not r["re"].search(path):
                continue
            r["seen"] += 1
            if r["seen"] <= rule.get("skip", 0):
                return None
            if rule.get("window") is not None:
                # A rate limit starts: this request and, for `window`
                # seconds, every one matching `window_path` (or `path`).
                r["since"] = now
                r["done"] += 1
                return i, rule
            times = rule.get("times")
            if times is not None and r["done"] >= times:
                return None
            r["done"] += 1
            return i, rule
    return None


def parse_scopes(values):
    """`repository:a/b:pull,push` -> {"a/b": {"pull", "push"}}."""
    out = {}
    for v in values:
        for scope in v.split(" "):
            parts = scope.split(":")
            if len(parts) >= 3 and parts[0] == "repository":
                name = ":".join(parts[1:-1])
                out.setdefault(name, set()).update(parts[-1].split(","))
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"

    def log(self, **entry):
        """One log line for this request, with the client's User-Agent."""
        headers = getattr(self, "headers", None)
        log(agent=headers.get("User-Agent") if headers else None, **entry)

    def log_message(self, *args):
        pass

    def setup(self):
        self.plain_on_tls = False
        self.tls_failed = False
        if TLS is not None:
            try:
                first = self.request.recv(1, socket.MSG_PEEK)
            except OSError:
                first = b""
            if first == b"\x16":
                try:
                    self.request = TLS.wrap_socket(self.request, server_side=True)
                except (OSError, ssl.SSLError) as e:
                    self.log(method="TLS", path="", client=self.client_address[1], fault=None,
                        status=None, tls_error=str(e))
                    self.tls_failed = True
            else:
                self.plain_on_tls = True
        super().setup()

    def handle_one_request(self):
        if self.tls_failed:
            self.close_connection = True
            return
        if self.plain_on_tls:
            # What Go's HTTPS servers answer to plain HTTP.
            self.log(method="PLAIN", path="", client=self.client_address[1], fault=None, status=400)
            body = b"Client sent an HTTP request to an HTTPS server.\n"
            try:
                self.connection.sendall(
                    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    b"Connection: close\r\n\r\n" + body
                )
            except OSError:
                pass
            self.close_connection = True
            return
        if TLS is not None:
            super().handle_one_request()
            return
        # A TLS ClientHello on this plain-HTTP port: answered as a plain
        # HTTP server answers it, and logged.
        try:
            first = self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            first = b""
        if first == b"\x16":
            self.log(method="TLS", path="", client=self.client_address[1], fault=None, status=400)
            try:
                self.connection.sendall(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            except OSError:
                pass
            self.close_connection = True
            return
        super().handle_one_request()

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)

    # ---- the request body, plain or chunked
    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ---- answers
    def raw(self, status, reason, headers, body, head=False):
        lines = [f"HTTP/1.1 {status} {reason}"]
        for k, v in headers:
            lines.append(f"{k}: {v}")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head_bytes, (b"" if head else body)

    def send_raw(self, head_bytes, body):
        self.connection.sendall(head_bytes + body)

    def answer(self, status, body=b"", extra=(), content_type="application/json"):
        reason = http.client.responses.get(status, "Status")
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        headers.extend(extra)
        head, body = self.raw(status, reason, headers, body, head=self.command == "HEAD")
        self.send_raw(head, body)

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    # ---- the token realm
    def realm(self):
        scheme = "https" if TLS is not None else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}/token"

    def token_endpoint(self, body):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if self.command == "POST":
            query.update(urllib.parse.parse_qs(body.decode("latin-1")))
        scopes = parse_scopes(query.get("scope", []))
        token = "tok-" + secrets.token_hex(8)
        with LOCK:
            TOKENS[token] = scopes
        self.log(
            method=self.command,
            path=urllib.parse.urlsplit(self.path).path,
            client=self.client_address[1],
            token_scopes=sorted(f"{k}:{','.join(sorted(v))}" for k, v in scopes.items()),
            basic=self.headers.get("Authorization", "").startswith("Basic "),
            fault=None,
            status=200,
        )
        doc = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.answer(200, doc)

    def authorized(self, path):
        """None if the request may pass, else the scope to challenge for."""
        m = re.match(r"^/v2/(.+?)/(manifests|blobs|tags)/", path)
        value = self.headers.get("Authorization", "")
        token = value[len("Bearer "):] if value.startswith("Bearer ") else None
        with LOCK:
            scopes = TOKENS.get(token) if token else None
        if m is None:
            return None if scopes is not None else ""
        name = m.group(1)
        action = "pull" if self.command in ("GET", "HEAD") else "push"
        wanted = f"repository:{name}:{'pull' if action == 'pull' else 'pull,push'}"
        if scopes is None or action not in scopes.get(name, set()):
            return wanted
        return None

    # ---- every request
    def handle_any(self):
        path = self.path
        method = self.command
        client = self.client_address[1]
        reload_rules()
        picked = pick(method, path)
        fault = picked[1]["fault"] if picked else None
        rule = picked[0] if picked else None
        if fault == "reset":
            # Answered by a reset before the body is read: what a dropped
            # connection looks like to a client in the middle of a request.
            self.log(method=method, path=path, client=client, fault="reset", rule=rule, status=None)
            self.reset()
            return
        body = self.read_body()
        if fault == "status":
            status = picked[1]["status"]
            extra = []
            code = picked[1].get("code") or {429: "TOOMANYREQUESTS", 503: "UNAVAILABLE"}.get(
                status, "UNKNOWN"
            )
            if status == 429 and "retry_after" in picked[1]:
                extra.append(("Retry-After", str(picked[1]["retry_after"])))
            self.log(method=method, path=path, client=client, fault="status", rule=rule, status=status)
            doc = json.dumps({"errors": [{"code": code, "message": "injected by faultproxy"}]})
            self.answer(status, doc.encode(), extra)
            return
        if fault == "stall":
            self.log(method=method, path=path, client=client, fault="stall", rule=rule, status=None)
            time.sleep(float(picked[1].get("seconds", 5)))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.log(method=method, path=path, client=client, fault="stall-end", rule=rule, status=None)
            return
        if fault == "delay":
            # A slow registry: the request is forwarded after a while.
            self.log(method=method, path=path, client=client, fault="delay", rule=rule, status=None)
            time.sleep(float(picked[1].get("seconds", 1)))
            fault = None
        if ARGS.token:
            if urllib.parse.urlsplit(path).path == "/token":
                self.token_endpoint(body)
                return
            scope = self.authorized(urllib.parse.urlsplit(path).path)
            if scope is not None:
                challenge = f'Bearer realm="{self.realm()}",service="faultproxy"'
                if scope:
                    challenge += f',scope="{scope}"'
                self.log(method=method, path=path, client=client, fault=None, status=401, auth="challenge")
                doc = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
                self.answer(401, doc.encode(), [("WWW-Authenticate", challenge)])
                return
        try:
            status, reason, headers, answer = self.forward(method, path, body)
        except OSError as e:
            self.log(method=method, path=path, client=client, fault=None, status=502, upstream_error=str(e))
            self.answer(502, b"")
            return
        head, rest = self.raw(status, reason, headers, answer, head=method == "HEAD")
        if fault == "truncate":
            # Half of the answer, then the connection closes: half the body,
            # or (for an answer without one) half of the header block.
            if rest:
                self.send_raw(head, rest[: len(rest) // 2])
            else:
                self.send_raw(head[: len(head) // 2], b"")
            self.log(method=method, path=path, client=client, fault="truncate", rule=rule, status=status)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.log(method=method, path=path, client=client, fault=None, status=status)
        self.send_raw(head, rest)

    def forward(self, method, path, body):
        conn = http.client.HTTPConnection(ARGS.upstream, timeout=120)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                lk = k.lower()
                if lk in HOP or lk == "content-length":
                    continue
                if ARGS.token and lk == "authorization":
                    continue
                conn.putheader(k, v)
            if TLS is not None:
                # The registry writes upload Locations with the scheme the client used.
                conn.putheader("X-Forwarded-Proto", "https")
            if body or method in ("PUT", "POST", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            r = conn.getresponse()
            answer = r.read()
            headers = []
            for k, v in r.getheaders():
                lk = k.lower()
                if lk in HOP:
                    continue
                if lk == "content-length" and method != "HEAD":
                    continue
                headers.append((k, v))
            if method != "HEAD" and r.status not in (204, 304):
                headers.append(("Content-Length", str(len(answer))))
            elif method != "HEAD":
                headers.append(("Content-Length", "0"))
            return r.status, r.reason, headers, answer
        finally:
            conn.close()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A client that went away (after a reset or a stall) is no news.
        kind = sys.exc_info()[0]
        if kind is not None and issubclass(kind, OSError):
            return
        super().handle_error(request, client_address)


def main():
    global LOG, ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--rules")
    p.add_argument("--token", action="store_true")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    ARGS = p.parse_args()
    if ARGS.tls_cert:
        global TLS
        TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        TLS.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
    LOG = open(ARGS.log, "a", buffering=1)
    reload_rules()
    server = Server(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, ARGS.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
