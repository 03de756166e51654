"""``python -m durabot.sandbox``: run the local Bot API sandbox until interrupted."""

from __future__ import annotations

import argparse

from durabot.sandbox.server import run_sandbox


def main(argv: list[str] | None = None) -> None:
    """Parse ``--host`` and ``--port`` and run the sandbox."""
    parser = argparse.ArgumentParser(prog="python -m durabot.sandbox", description="Run the local Bot API sandbox.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port to listen on; 0 picks a free one (default: 8081)")
    arguments = parser.parse_args(argv)
    run_sandbox(arguments.host, arguments.port)


if __name__ == "__main__":
    main()
