"""Screenshots of the dashboard's three views on a fresh demo store, for the README.

Runs ``xebench demo`` in a temporary directory, serves its store with its
config (``create_app`` under uvicorn on a loopback port) and photographs each
view with Debian's chromium through Playwright (the first screen of each, as
JPEG, so the committed images stay small).

Usage::

    python scripts/dashboard_screenshots.py            # writes docs/images/dashboard-*.jpg
    python scripts/dashboard_screenshots.py --out /tmp/shots
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from xebench.service.app import create_app
from xebench.service.config import load_config
from xebench.store import EventStore

VIEWS = {
    "executive": "/?model=fraud",
    "oncall": "/oncall?model=fraud",
    "debug": "/debug?model=fraud&cohort=region:eu",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = Path(__file__).resolve().parent.parent
    parser.add_argument("--out", type=Path, default=here / "docs" / "images")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "xebench", "demo"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        os.chdir(tmp)  # the demo's config names its database relative to here
        config = load_config(Path("xebench-demo/xebench.yaml"))
        app = create_app(EventStore(config.db), config)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        time.sleep(3)  # the SLO loop's first evaluation
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu",
                      "--disable-background-networking"],
            )  # fmt: skip
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            for view, path in VIEWS.items():
                page.goto(f"http://127.0.0.1:{port}{path}")
                page.wait_for_function(
                    "document.querySelectorAll('script.xb-chart').length"
                    " === document.querySelectorAll('.xb-chart-box canvas').length"
                )
                page.wait_for_timeout(500)  # Chart.js's entry animation
                target = args.out / f"dashboard-{view}.jpg"
                page.screenshot(path=str(target), type="jpeg", quality=70)
                print(f"{target}: {target.stat().st_size / 1024:.0f} KiB")
            browser.close()
        server.should_exit = True
        thread.join(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
