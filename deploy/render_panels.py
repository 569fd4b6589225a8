"""Render a Grafana dashboard's panels as PNG images from a real Prometheus, with matplotlib.

    # against a Prometheus that already scrapes cmscan:
    python deploy/render_panels.py --prometheus http://127.0.0.1:9090 --range 6h
    # or run `cmscan demo` and a throwaway Prometheus for a few minutes, then render:
    python deploy/render_panels.py --demo 300

Each panel's queries go through Prometheus' HTTP API exactly as Grafana would send them
(template variables set to All, repeated panels once per value), and each panel is drawn
in the dashboard's layout. It writes one PNG of the whole dashboard and one per panel into
deploy/grafana/screenshots/. Needs matplotlib: pip install -e '.[render]'.

The drawing and the dashboard helpers it is built on are in deploy/panels/; those helpers
(panels, variables, expansion, the Prometheus client) are also what the tests use to
evaluate every dashboard query.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from panels.launcher import demo_with_prometheus
from panels.prometheus_api import Prometheus
from panels.rendering import render

HERE = Path(__file__).resolve().parent
DASHBOARDS = HERE / "grafana" / "dashboards"
SCREENSHOTS = HERE / "grafana" / "screenshots"


def run_demo(seconds: float, hosts: int, out_dir: Path, scrape_interval: float) -> None:
    # The demo outlasts the wait by two minutes, so that it is still being scraped while
    # the panels are queried and drawn.
    with demo_with_prometheus(seconds + 120, hosts, scrape_interval) as stack:
        print(
            f"cmscan demo on {stack.daemon}, Prometheus on {stack.prometheus}; "
            f"rendering in {seconds:.0f} s"
        )
        time.sleep(seconds)
        client = Prometheus(f"http://{stack.prometheus}")
        for name in ("cmscan-deployment.json", "cmscan-health.json"):
            for path in render(
                client,
                DASHBOARDS / name,
                out_dir,
                range_seconds=seconds,
                scrape_interval=scrape_interval,
            ):
                print(path)


def _duration(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 15m or 6h")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prometheus", help="URL of a Prometheus that scrapes cmscan")
    source.add_argument(
        "--demo",
        type=_duration,
        metavar="DURATION",
        help="run cmscan demo and a Prometheus for this long, then render",
    )
    parser.add_argument("--hosts", type=int, default=600, help="demo fleet size")
    parser.add_argument(
        "--range",
        type=_duration,
        default=_duration("6h"),
        help="time range of the graphs (with --prometheus)",
    )
    parser.add_argument("--scrape-interval", type=_duration, default=None)
    parser.add_argument(
        "--dashboard",
        type=Path,
        action="append",
        help="dashboard JSON (default: both cmscan dashboards)",
    )
    parser.add_argument("--out", type=Path, default=SCREENSHOTS)
    args = parser.parse_args()
    if args.demo:
        run_demo(args.demo, args.hosts, args.out, args.scrape_interval or 2.0)
        return
    client = Prometheus(args.prometheus)
    boards = args.dashboard or [
        DASHBOARDS / "cmscan-deployment.json",
        DASHBOARDS / "cmscan-health.json",
    ]
    for board in boards:
        for path in render(
            client,
            board,
            args.out,
            range_seconds=args.range,
            scrape_interval=args.scrape_interval or 30.0,
        ):
            print(path)


if __name__ == "__main__":
    main()
