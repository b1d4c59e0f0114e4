"""An analyst in a loop: ``python -m tests.reliability.read_loop COPY LOG STOP``.

Opens the analyst copy read-only again and again and fingerprints every table and view in one connection,
appending one JSON line per read to LOG: ``{"at", "checksums"}`` or ``{"at", "error"}``. Stops after one last
read once the file STOP exists.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb

from tests.reliability.helpers import VOLATILE_COLUMNS, fingerprint_connection


def read_once(copy: Path) -> dict:
    """Fingerprint the analyst copy as one analyst session would see it."""
    try:
        # One thread and a pause between reads: an analyst, not a load test competing with the run for CPU.
        with duckdb.connect(str(copy), read_only=True, config={"threads": 1}) as conn:
            return {"checksums": fingerprint_connection(conn, ignore=VOLATILE_COLUMNS)}
    except (duckdb.Error, OSError) as error:
        return {"error": f"{type(error).__name__}: {error}"}


def main() -> int:
    """Read until told to stop."""
    copy, log, stop = (Path(arg) for arg in sys.argv[1:4])
    with log.open("a", encoding="utf-8") as output:
        while True:
            stopping = stop.exists()
            output.write(json.dumps({"at": time.time(), **read_once(copy)}) + "\n")
            output.flush()
            if stopping:
                return 0
            time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
