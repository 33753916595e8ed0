"""Timestamps from the binaries' text logs, for the benchmark reports (sourced by
tools/bench-faststart-url.sh and tools/bench-faststart-url-netns.sh with PYTHONPATH=tools/bench)."""
import datetime
import sys


def when(path, msg):
    """Unix time of the first line of log `path` that contains `msg` (the line's leading
    RFC 3339 timestamp, UTC); exits the report with a message if no line has it."""
    with open(path) as log:
        for line in log:
            if msg in line:
                ts = line.split()[0].rstrip("Z")[:26]
                return datetime.datetime.fromisoformat(ts).replace(tzinfo=datetime.timezone.utc).timestamp()
    sys.exit(f"{path} has no {msg!r}")
