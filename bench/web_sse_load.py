#!/usr/bin/env python3
"""Load for `ccr web`'s live feed: N Server-Sent-Events viewers, plus a tuner streaming a capture
into `ccr serve` at the recording's pace. Prints delivery latency (ccr decoded the line -> a
viewer read it) percentiles and events delivered per second. Standard library only."""
import argparse, asyncio, json, socket, struct, sys, time


def parse_blocks(data):
    blocks, i = [], 0
    while i < len(data):
        cmd = data[i]
        length = int(data[i + 1:i + 11].split(b"\0")[0])
        blocks.append((cmd, data[i + 11:i + 11 + length]))
        i += 11 + length + 2
    return blocks


def block(cmd, payload):
    return bytes([cmd]) + str(len(payload)).encode().ljust(10, b"\0") + payload + b"\r\n"


async def tuner(port, capture, description):
    blocks = parse_blocks(open(capture, "rb").read())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(block(2, b"") + block(4, description.encode()))
    writer.write(block(5, next(p for c, p in blocks if c == 5)))
    data = [p for c, p in blocks if c == 6]
    start, first = time.monotonic(), None
    for h, t in zip(data[0::2], data[1::2]):
        ts = struct.unpack("<q", h[:8])[0]
        first = ts if first is None else first
        delay = start + (ts - first) / 1000 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.write(block(6, h) + block(6, t))
        await writer.drain()
    writer.write_eof()
    await reader.read()
    writer.close()


async def viewer(port, latencies, counts, index, ready):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /live/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    ready.append(index)
    event = None
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            if line.startswith(b"event: "):
                event = line[7:].strip()
            elif line.startswith(b"data: ") and event == b"line":
                got = time.time() * 1000
                latencies.append(got - json.loads(line[6:])["capturedAt"])
                counts[index] += 1
    except (asyncio.CancelledError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--web-port", type=int, required=True)
    ap.add_argument("--tuner-port", type=int, required=True)
    ap.add_argument("--capture", required=True)
    ap.add_argument("--viewers", type=int, default=1000)
    args = ap.parse_args()
    latencies, counts, ready = [], [0] * args.viewers, []
    tasks = []
    for i in range(args.viewers):
        tasks.append(asyncio.create_task(viewer(args.web_port, latencies, counts, i, ready)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    while len(ready) < args.viewers:
        await asyncio.sleep(0.1)
    t0 = time.monotonic()
    await tuner(args.tuner_port, args.capture, "bench tuner")
    await asyncio.sleep(2)
    elapsed = time.monotonic() - t0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    def pct(p):
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else float("nan")
    print(json.dumps({
        "viewers": args.viewers,
        "events_delivered": len(latencies),
        "events_per_viewer_min": min(counts), "events_per_viewer_max": max(counts),
        "events_per_second": round(len(latencies) / elapsed, 1),
        "latency_ms_p50": round(pct(0.50)), "latency_ms_p99": round(pct(0.99)), "latency_ms_max": round(latencies[-1]) if latencies else None,
    }))


if __name__ == "__main__":
    asyncio.run(main())
