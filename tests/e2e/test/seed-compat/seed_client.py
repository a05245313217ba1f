#!/usr/bin/env python3
"""A client of the seed's UDP protocol, for ferry's tests and bench.

Written from ferry's description of the seed's wire format (docs and the seed-compat issue), not
from the seed's code. On the wire it behaves as described for the seed's own client:

- each command goes out from a new IPv4 UDP socket as ASCII text, names lower-cased: `get NAME`,
  `put NAME`, `rename OLD NEW`, `list`, `exit`; only server ports 5001-65535 are accepted;
- list, rename and exit: one reply, read with a 2,048-byte buffer (a longer datagram is cut);
- get: `FE` or `FNE`; then each Fernet token's plaintext is split at the FIRST `###-###`: the first
  part is the chunk, the second the flag; flag `0` writes the chunk and acknowledges with
  `ACK Packet received.###-###1`, anything else asks again with `...###-###0`; an empty chunk ends
  the file (saved as `received_NAME`), answered with `ACK File transferred ###-###2`;
- put: `FE` (or `FNE` without the file), then `CHUNK + ###-###0` tokens of 2,048 bytes read blindly,
  one at a time; an acknowledgement's flag (after its first marker) `1` sends the next chunk, `0`
  sends the same token again, `2` ends the put and prints the text before the marker;
- no timeouts and no resends of its own, the seed's hard-coded key.

Commands come on stdin, one per line (the seed's menu). Options, for tests only (they change no
datagram): --json prints one JSON object per command; --timeout S gives up a command after S
seconds of silence; --max-resend-requests N gives up a get after N requests to send again (a
chunk the client cannot split would otherwise loop forever); --key FILE uses another key.
"""
import json
import os
import socket
import sys
import time

from cryptography.fernet import Fernet

SEED_KEY = b"Yq0_0faWZEdP1ij8qm4Fy9alpCIYUUj6tothiIla1H8="
MARKER = b"###-###"
CHUNK_BYTES = 2048
# A token of a 2,048-byte chunk is about 2,828 bytes of base64 text.
TOKEN_BUFFER = 4096
REPLY_BUFFER = 2048

ACK_NEXT = b"ACK Packet received.###-###1"
ACK_AGAIN = b"ACK Packet received.###-###0"
ACK_DONE = b"ACK File transferred ###-###2"


class GiveUp(Exception):
    pass


def parse_command(line):
    """The command's words, lower-cased as the seed's client does, or None with a reason."""
    words = line.strip("\r\n").split(" ")
    kind = words[0].lower()
    if kind in ("get", "put"):
        if len(words) < 2:
            return None, "Please provide arguments for that command."
        return [kind, words[1].lower()], None
    if kind == "rename":
        if len(words) < 3:
            return None, "Please provide arguments for that command."
        return [kind, words[1].lower(), words[2].lower()], None
    if kind in ("list", "exit"):
        return [kind], None
    return None, "Please provide one of the following commands."


class SeedClient:
    def __init__(self, host, port, fernet, timeout, max_resend_requests):
        self.server = (host, port)
        self.fernet = fernet
        self.timeout = timeout
        self.max_resend_requests = max_resend_requests

    def run(self, words, out):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(self.timeout)
        try:
            sock.sendto(" ".join(words).encode(), self.server)
            if words[0] == "get":
                self.get(sock, words[1], out)
            elif words[0] == "put":
                self.put(sock, words[1], out)
            else:
                reply, _ = sock.recvfrom(REPLY_BUFFER)
                out(reply.decode())
                return reply.decode() == "Client and Server exit"
        finally:
            sock.close()
        return False

    def get(self, sock, name, out):
        first, _ = sock.recvfrom(TOKEN_BUFFER)
        if first.decode() != "FE":
            out("No such file on the server.")
            return
        requests = 0
        with open("received_" + name, "wb") as f:
            while True:
                token, sender = sock.recvfrom(TOKEN_BUFFER)
                parts = self.fernet.decrypt(token).split(MARKER)
                data, flag = parts[0], parts[1]
                if not data:
                    break
                if flag == b"0":
                    f.write(data)
                    sock.sendto(ACK_NEXT, sender)
                else:
                    requests += 1
                    if self.max_resend_requests is not None and requests > self.max_resend_requests:
                        raise GiveUp("%d requests to send a chunk again: the chunk cannot be split" % requests)
                    sock.sendto(ACK_AGAIN, sender)
        sock.sendto(ACK_DONE, sender)
        out("Saved as received_%s." % name)

    def put(self, sock, name, out):
        if not os.path.isfile(name):
            sock.sendto(b"FNE", self.server)
            out("No such local file.")
            return
        sock.sendto(b"FE", self.server)
        with open(name, "rb") as f:
            while True:
                token = self.fernet.encrypt(f.read(CHUNK_BYTES) + MARKER + b"0")
                sock.sendto(token, self.server)
                while True:
                    ack, _ = sock.recvfrom(TOKEN_BUFFER)
                    parts = ack.decode().split(MARKER.decode())
                    message, flag = parts[0], parts[1]
                    if flag != "0":
                        break
                    sock.sendto(token, self.server)
                if flag == "2":
                    out(message)
                    return


def main(argv):
    args = argv[1:]
    as_json = "--json" in args
    options = {}
    positional = []
    i = 0
    while i < len(args):
        if args[i] in ("--timeout", "--max-resend-requests", "--key"):
            options[args[i]] = args[i + 1]
            i += 2
        elif args[i] == "--json":
            i += 1
        else:
            positional.append(args[i])
            i += 1
    if len(positional) != 2:
        print("Please enter ip address and port no as arguments.")
        return 2
    host, port = positional[0], int(positional[1])
    if port < 5001 or port > 65535:
        print("Please enter port no between 5001 and 65535 inclusive.")
        return 2
    key = SEED_KEY
    if "--key" in options:
        with open(options["--key"], "rb") as f:
            key = next(line.strip() for line in f if line.strip() and not line.startswith(b"#"))
    timeout = float(options["--timeout"]) if "--timeout" in options else None
    limit = int(options["--max-resend-requests"]) if "--max-resend-requests" in options else None
    client = SeedClient(host, port, Fernet(key), timeout, limit)

    for line in sys.stdin:
        if line.strip() == "":
            continue
        lines = []
        words, problem = parse_command(line)
        started = time.monotonic()
        leave = False
        error = None
        if words is None:
            lines.append(problem)
        else:
            try:
                leave = client.run(words, lines.append)
            except (socket.timeout, GiveUp) as e:
                error = "gave up: %s" % (e if str(e) else "no answer in time")
        seconds = time.monotonic() - started
        if as_json:
            record = {"command": line.strip(), "words": words, "output": lines, "seconds": seconds}
            if error is not None:
                record["error"] = error
            print(json.dumps(record), flush=True)
        else:
            for text in lines:
                print(text, flush=True)
            if error is not None:
                print(error, flush=True)
        if leave:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
