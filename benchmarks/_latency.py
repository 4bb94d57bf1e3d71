"""A relay that puts a network's round trip in front of a loopback server, for the benchmarks.

    python _latency.py UPSTREAM_PORT ROUND_TRIP_MS

Prints its base URL, then relays every connection it accepts to
``127.0.0.1:UPSTREAM_PORT``, holding each chunk of bytes for half the round
trip in each direction before passing it on: order is kept and bandwidth is
not limited, so a request waits one round trip, as it would over a real
network (a new connection waits one more). It stops when its stdin closes.
In its own process, so that its work shares no GIL with the one measured.
"""

from __future__ import annotations

import asyncio
import sys

CHUNK = 1 << 16


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await held.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(CHUNK)
            held.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await sender
    except (ConnectionError, asyncio.CancelledError):
        sender.cancel()
    finally:
        writer.close()


async def _serve(upstream: int, round_trip: float) -> None:
    async def relay(client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        await asyncio.sleep(round_trip)  # the connection's own handshake
        try:
            server_reader, server = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client.close()
            return
        await asyncio.gather(
            _pump(client_reader, server, round_trip / 2),
            _pump(server_reader, client, round_trip / 2),
            return_exceptions=True,
        )

    listening = await asyncio.start_server(relay, "127.0.0.1", 0, backlog=256)
    port = listening.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes it
    listening.close()


def main() -> int:
    asyncio.run(_serve(int(sys.argv[1]), float(sys.argv[2]) / 1000))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
