"""Record `cmscan demo` in a 100x30 tmux pane: the text capture and a PNG of it for the README.

Needs tmux and Pillow (`pip install -e '.[render]'`): `python bench/demo_screenshot.py`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from rich.console import Console
from rich.style import Style
from rich.text import Text

RESULTS = Path(__file__).parent / "results"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")
FONT_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf")
BACKGROUND = (24, 26, 33)
FOREGROUND = (220, 223, 228)


def capture(width: int, height: int, wait: float, hosts: int) -> str:
    """Run the demo in a detached tmux session and capture its pane with colours."""
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed: apt-get install tmux")
    session = "cmscan-demo-capture"
    workdir = Path(tempfile.mkdtemp(prefix="cmscan-demo-"))
    command = (
        f"cd {workdir} && {sys.executable} -m scanner demo --hosts {hosts}"
        f" --duration {wait + 30:.0f}"
    )
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), command],
        check=True,
    )
    try:
        time.sleep(wait)
        result = subprocess.run(
            ["tmux", "capture-pane", "-p", "-e", "-t", session],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def render_png(ansi: str, path: Path, *, width: int, height: int) -> None:
    """Draw the captured cells with their colours, as the terminal showed them."""
    font = ImageFont.truetype(str(FONT), 15)
    bold = ImageFont.truetype(str(FONT_BOLD), 15)
    cell_w = round(font.getlength("M"))
    cell_h = 20
    margin = 12
    image = Image.new(
        "RGB", (width * cell_w + 2 * margin, height * cell_h + 2 * margin), BACKGROUND
    )
    draw = ImageDraw.Draw(image)
    console = Console(width=width, color_system="truecolor", legacy_windows=False)
    # Parsed as a whole: tmux only emits an attribute when it changes, so a line can inherit
    # its colour from the one before.
    lines = Text.from_ansi(ansi, no_wrap=True).split("\n")
    for row, line in enumerate(lines[:height]):
        column = 0
        line.no_wrap = True
        for segment in console.render(line):
            if segment.text == "\n":
                continue
            style = segment.style
            fill = _fill(style)
            face = bold if style and style.bold else font
            for char in segment.text:
                draw.text(
                    (margin + column * cell_w, margin + row * cell_h), char, font=face, fill=fill
                )
                column += 1
    image.save(path)


def _fill(style: Style | None) -> tuple[int, int, int]:
    # "Default colour" (SGR 39) is the terminal's foreground, not a colour of its own.
    rgb = FOREGROUND
    if style is not None and style.color is not None and not style.color.is_default:
        triplet = style.color.get_truecolor()
        rgb = (triplet.red, triplet.green, triplet.blue)
    if style is not None and style.dim:
        rgb = (
            (rgb[0] + BACKGROUND[0]) // 2,
            (rgb[1] + BACKGROUND[1]) // 2,
            (rgb[2] + BACKGROUND[2]) // 2,
        )
    return rgb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--height", type=int, default=30)
    parser.add_argument("--wait", type=float, default=75.0, help="seconds before the capture")
    parser.add_argument("--hosts", type=int, default=600)
    args = parser.parse_args()
    ansi = capture(args.width, args.height, args.wait, args.hosts)
    RESULTS.mkdir(exist_ok=True)
    plain = Text.from_ansi(ansi).plain
    (RESULTS / "demo.txt").write_text(plain.rstrip() + "\n", encoding="utf-8")
    render_png(ansi, RESULTS / "demo.png", width=args.width, height=args.height)
    print(plain)
    print(f"wrote {RESULTS / 'demo.txt'} and {RESULTS / 'demo.png'}")


if __name__ == "__main__":
    main()
