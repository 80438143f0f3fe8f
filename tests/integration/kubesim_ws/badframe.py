#!/usr/bin/env python3
"""Send one bad WebSocket frame to a kubesim pods/exec stream and print the
close code kubesim answers with (tests/integration/kubesim_badinput.sh).

  badframe.py URL CA_FILE TOKEN NAMESPACE POD CASE

CASE: unmasked (a client frame without a mask: RFC 6455 5.1), reserved
(an opcode 0x3, reserved: 5.2), bigping (a ping with 126 bytes of payload:
control frames are at most 125, 5.5), rsv (RSV1 set without an extension).
Prints "close CODE" or "no-close WHY"; exit 0 unless the script broke.
"""
import base64
import os
import socket
import ssl
import struct
import sys
from urllib.parse import urlparse


def read_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("EOF")
        b += c
    return b


def read_frame(s):
    h = read_exact(s, 2)
    op = h[0] & 0x0F
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", read_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", read_exact(s, 8))[0]
    return op, read_exact(s, n)


def masked(first, payload):
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    if n < 126:
        hdr = bytes([first, 0x80 | n])
    else:
        hdr = bytes([first, 0x80 | 126]) + struct.pack(">H", n)
    return hdr + key + body


def main():
    url, ca, token, ns, pod, case = sys.argv[1:7]
    u = urlparse(url)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection((u.hostname, u.port), timeout=20)
    s = ctx.wrap_socket(raw, server_hostname=u.hostname)
    key = base64.b64encode(os.urandom(16)).decode()
    path = f"/api/v1/namespaces/{ns}/pods/{pod}/exec?command=cat&stdin=1&stdout=1"
    req = (f"GET {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
           f"Authorization: Bearer {token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
           f"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n")
    s.sendall(req.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        c = s.recv(1)
        if not c:
            print("no-close EOF before the 101")
            return
        head += c
    if not head.startswith(b"HTTP/1.1 101"):
        print("no-close " + head.split(b"\r\n")[0].decode())
        return
    if case == "unmasked":
        bad = bytes([0x82, 3, 0, ord("h"), ord("i")])
    elif case == "reserved":
        bad = masked(0x83, b"\x00hi")
    elif case == "bigping":
        bad = masked(0x89, b"x" * 126)
    elif case == "rsv":
        bad = masked(0x80 | 0x40 | 0x2, b"\x00hi")
    else:
        raise SystemExit(f"unknown case {case}")
    s.sendall(bad)
    try:
        while True:
            op, payload = read_frame(s)
            if op == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                print(f"close {code}")
                return
    except (EOFError, OSError) as e:
        print(f"no-close {e}")


if __name__ == "__main__":
    main()
