"""A chaos server in its own process for the benchmarks, scripted over stdin.

Running the server in the benchmark's own process would make it share the
GIL with the library under test. ``_server.py ROOT [CERT_PEM KEY_PEM]``
serves ROOT, over TLS when given a certificate chain and its key. Prints its
base URL, then reads commands:

    reset PATH NBYTES COUNT   the next COUNT requests to PATH reset after NBYTES
                              bytes each (so a resumed download resets every NBYTES)
    count                     prints the number of requests served so far
    bytes                     prints the body bytes sent so far
    quit
"""

from __future__ import annotations

import sys

from surefetch.testing import ChaosServer, Fault


def main() -> int:
    root = sys.argv[1]
    context = None
    if len(sys.argv) > 3:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
    with ChaosServer(root=root, max_seconds=3600, ssl_context=context) as server:
        print(server.base_url, flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] == "quit":
                break
            if words[0] == "reset":
                path, nbytes, count = words[1], int(words[2]), int(words[3])
                server.clear_scripts()
                server.script(path, [Fault.reset_after(nbytes)] * count)
            elif words[0] == "count":
                pass
            elif words[0] == "bytes":
                print(server.bytes_sent(), flush=True)
                continue
            print(server.request_count(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
