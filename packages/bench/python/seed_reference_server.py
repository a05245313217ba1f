#!/usr/bin/env python3
"""A REIMPLEMENTATION of the seed's server, for ferry's bench only. It is not the seed's code.

The seed (a small Python UDP program: Python, Fernet, stop-and-wait, per its README) is not part of
this repository. This program was written from ferry's description of the seed's wire format, so
that `pnpm bench` can set ferry-server --seed-compat beside "the seed's own server" on the same
machine, with the same client. It does what that description says the seed's server did:

- one client at a time, in one thread, on one socket; commands are ASCII text;
- get NAME: `FE` (or `FNE`), then one Fernet token of `CHUNK + "###-###0"` per 2,048 bytes read,
  each sent once the previous one is acknowledged (an acknowledgement ending in 0 sends it again),
  and a token of an empty chunk to end; the client's `...###-###2` closes the get;
- put NAME: after `FE`, tokens split at the first `###-###`; the chunk is written to `send_NAME`
  when the flag is 0 (acknowledged `...###-###1`), else `...###-###0` asks again; an empty chunk
  ends it with `ACK File transferred ###-###2`;
- list, rename (the seed's texts and extension rule), exit (which stops this server, as it did);
- the seed's hard-coded key, no timeouts, no retransmission, no path confinement, no atomic writes.

Never serve anything with it: run it in a throwaway directory, on 127.0.0.1, for a benchmark.

Usage: seed_reference_server.py PORT [--host ADDRESS]   (PORT 0 picks a free port)
Prints one line, `listening on ADDRESS:PORT`, once it is bound; serves the current directory.
"""
import os
import socket
import sys

from cryptography.fernet import Fernet

SEED_KEY = b"Yq0_0faWZEdP1ij8qm4Fy9alpCIYUUj6tothiIla1H8="
MARKER = b"###-###"
CHUNK_BYTES = 2048
BUFFER = 4096

fernet = Fernet(SEED_KEY)


def flag_of(ack):
    parts = ack.split(MARKER)
    return parts[1] if len(parts) > 1 else b""


def send_file(sock, client, name):
    if not os.path.isfile(name):
        sock.sendto(b"FNE", client)
        return
    sock.sendto(b"FE", client)
    with open(name, "rb") as f:
        while True:
            token = fernet.encrypt(f.read(CHUNK_BYTES) + MARKER + b"0")
            sock.sendto(token, client)
            flag = flag_of(sock.recvfrom(BUFFER)[0])
            while flag == b"0":
                sock.sendto(token, client)
                flag = flag_of(sock.recvfrom(BUFFER)[0])
            if flag == b"2":
                return


def receive_file(sock, name):
    first, client = sock.recvfrom(BUFFER)
    if first != b"FE":
        return
    with open("send_" + name, "wb") as f:
        while True:
            token, client = sock.recvfrom(BUFFER)
            parts = fernet.decrypt(token).split(MARKER)
            if not parts[0]:
                break
            if parts[1] == b"0":
                f.write(parts[0])
                sock.sendto(b"ACK Packet received.###-###1", client)
            else:
                sock.sendto(b"ACK Packet received.###-###0", client)
    sock.sendto(b"ACK File transferred ###-###2", client)


def rename(old, new):
    try:
        old_extension = old.split(".")[1]
        new_extension = new.split(".")[1]
    except IndexError:
        return "Please provide file with extension."
    if not os.path.isfile(old):
        return "File doesn't exists."
    if os.path.isfile(new):
        return "File name already exist. Please give another name."
    if old_extension != new_extension:
        return "Please provide file name with same extension."
    os.rename(old, new)
    return "File renamed."


def main(argv):
    if len(argv) < 2:
        print("usage: seed_reference_server.py PORT [--host ADDRESS]")
        return 2
    host = argv[argv.index("--host") + 1] if "--host" in argv else "127.0.0.1"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, int(argv[1])))
    print("listening on %s:%d" % sock.getsockname(), flush=True)
    while True:
        data, client = sock.recvfrom(BUFFER)
        words = data.decode(errors="replace").split(" ")
        command = words[0].lower()
        if command == "get" and len(words) > 1:
            send_file(sock, client, words[1].lower())
        elif command == "put" and len(words) > 1:
            receive_file(sock, words[1].lower())
        elif command == "rename" and len(words) > 2:
            sock.sendto(rename(words[1].lower(), words[2].lower()).encode(), client)
        elif command == "list":
            names = "\n".join(os.listdir("."))
            sock.sendto(("Files in the server directory are: \n" + names).encode(), client)
        elif command == "exit":
            sock.sendto(b"Client and Server exit", client)
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
