"""The out-of-process half of SentinelWatchdog (watchdog.py), run as a script so that it starts
without importing the engine: its first line on stdin is {"url", "tag", "timeout"}, then each
byte is a beat. After `timeout` seconds without one it cancels the read tagged `tag` on the
database server, again every second until stdin closes (a read may start after the first cancel);
it then prints "fired" if it had to."""

import json
import os
import select
import sys
import time


def main() -> None:
    stdin = sys.stdin.buffer.raw
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(stdin.fileno(), 1)
        if not chunk:
            return
        line += chunk
    settings = json.loads(line)
    timeout, last, fired, database = float(settings["timeout"]), time.monotonic(), False, None
    while True:
        ready, _, _ = select.select([stdin], [], [], min(1.0, timeout / 4))
        if ready:
            if not os.read(stdin.fileno(), 4096):
                break  # the stage ended
            last = time.monotonic()
        elif fired or time.monotonic() - last > timeout:
            fired = True
            if database is None:
                from sync_platform.engine import database_for

                database = database_for(settings["url"])
            try:
                database.cancel_read(settings["tag"])
            except Exception:  # noqa: BLE001, S110 - the server unreachable too: try again at the next look
                pass
    print("fired" if fired else "quiet", flush=True)


if __name__ == "__main__":
    main()
