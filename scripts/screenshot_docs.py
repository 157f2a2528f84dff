"""Look at the tutorial site as a reader does: build it, serve it on 127.0.0.1, screenshot pages.

Builds the site strictly into a temporary folder, serves it on 127.0.0.1 (a free port, this
machine only), and has headless Chromium (Debian's ``chromium`` package) save a 1280 x 1600
PNG of the home page and of a notebook page into ``--out``. Each PNG is checked: the right
size, and not blank. Exit status 0 when every screenshot was taken and passed those checks.

Example:
    python scripts/screenshot_docs.py --out outputs/docs-screenshots
    python scripts/screenshot_docs.py --page concepts/lora/ --page stack/ --height 6000
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1280, 1600
DEFAULT_PAGES = {"home": "", "notebook": "notebooks/02_lora_adapters/"}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
]


def find_chromium() -> str:
    """The Chromium binary, or exit with the install command."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("chromium not found: install Debian's package with  apt-get install -y chromium")


def build_site(site_dir: Path) -> None:
    """mkdocs build --strict into ``site_dir``; exit with mkdocs' output if it fails."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--quiet",
            "--site-dir",
            str(site_dir),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (keep the console for results)
        pass


def serve(site_dir: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``site_dir`` on 127.0.0.1 at a free port, in a daemon thread; return the server and base URL."""
    handler = functools.partial(QuietHandler, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    return struct.unpack(">II", head[16:24])


def check_png(path: Path, height: int = HEIGHT) -> str:
    """Raise if the screenshot is missing, the wrong size or blank; return a one-line description."""
    if not path.exists() or path.stat().st_size == 0:
        raise ValueError(f"{path}: no screenshot written")
    size = png_size(path)
    if size != (WIDTH, height):
        raise ValueError(f"{path}: {size[0]}x{size[1]}, expected {WIDTH}x{height}")
    try:
        from PIL import Image
    except ImportError:
        return f"{size[0]}x{size[1]}, {path.stat().st_size:,} bytes"
    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    if len(colours) < 16:
        raise ValueError(f"{path}: only {len(colours)} colours, the page looks blank")
    dark = sum(count for count, (r, g, b) in colours if r + g + b < 200)
    share = dark / (WIDTH * height)
    if share < 0.002:
        raise ValueError(f"{path}: almost no dark pixels ({share:.3%}), is there any text?")
    return f"{size[0]}x{size[1]}, {path.stat().st_size:,} bytes, {len(colours)} colours, {share:.1%} text-dark pixels"


def screenshot(
    chromium: str, url: str, out: Path, height: int = HEIGHT, timeout: int = 180
) -> None:
    """One headless Chromium run with a fresh profile directory, saving ``url`` as ``out``."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    try:
        cmd = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            f"--window-size={WIDTH},{height}",
            url,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"chromium exited {result.returncode} for {url}:\n{result.stderr[-2000:]}"
            )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "outputs" / "docs-screenshots",
        help="folder for the PNGs (default: outputs/docs-screenshots)",
    )
    parser.add_argument(
        "--page",
        action="append",
        default=[],
        metavar="PATH",
        help="an extra page to capture, as a site path such as concepts/lora/ (repeatable)",
    )
    parser.add_argument(
        "--height",
        type=int,
        default=HEIGHT,
        help=f"window height in pixels (default {HEIGHT}; larger captures more of a long page)",
    )
    parser.add_argument(
        "--site",
        type=Path,
        default=None,
        help="an already built site to serve instead of building one",
    )
    args = parser.parse_args(argv)

    chromium = find_chromium()
    pages = dict(DEFAULT_PAGES)
    for extra in args.page:
        if "#" in extra:  # headless Chromium scrolls to a fragment badly: the shot comes out blank
            parser.error(f"--page {extra}: no #fragments; use --height to capture more of the page")
        pages[re.sub(r"[^A-Za-z0-9_-]+", "_", extra.strip("/")) or "home"] = extra.lstrip("/")
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="course-site-") as tmp:
        site = args.site
        if site is None:
            site = Path(tmp) / "site"
            build_site(site)
        server, base = serve(site)
        failures = 0
        try:
            for name, path in pages.items():
                if not (site / path / "index.html").exists():
                    print(f"FAILED  {name}: {path or '/'} is not a page of the built site")
                    failures += 1
                    continue
                out = args.out.resolve() / f"{name}.png"
                out.unlink(missing_ok=True)
                try:
                    screenshot(chromium, base + path, out, args.height)
                    print(f"ok      {out}  ({check_png(out, args.height)})  {base + path}")
                except (RuntimeError, ValueError, subprocess.TimeoutExpired) as err:
                    print(f"FAILED  {name}: {err}")
                    failures += 1
        finally:
            server.shutdown()
            server.server_close()
    print(f"{len(pages) - failures}/{len(pages)} screenshots in {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
