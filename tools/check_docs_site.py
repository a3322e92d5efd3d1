"""Check a built documentation site: links, and rendering in Chromium.

    python tools/check_docs_site.py site [--screenshot site/screenshot-home.png]

1. Links: every ``href``/``src`` of every HTML page that points inside the
   site must name a file that exists, and a ``#fragment`` must name an
   ``id`` on that page.
2. Rendering: the site is served on 127.0.0.1 and every page is loaded in
   headless Chromium (``--dump-dom``); each must load and hold its article
   and its first heading. A screenshot of the home page is written.

The browser check is skipped, with a message saying how to install
Chromium, when no Chromium is found (``--require-browser`` makes that an
error). Exit status 1 lists the problems.
"""

from __future__ import annotations

import argparse
import functools
import html
import html.parser
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import unquote
from urllib.parse import urlsplit

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
# A fresh, quiet, offline browser: no sandbox (root in containers), no GPU,
# no background traffic.
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)
_LINK_ATTRIBUTES = {"a": "href", "link": "href", "img": "src", "script": "src"}


class _PageParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.h1: list[str] = []
        self._in_h1 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        wanted = _LINK_ATTRIBUTES.get(tag)
        if wanted and attrs.get(wanted):
            self.links.append(attrs[wanted])
        if tag == "h1":
            self._in_h1 = True
            self.h1.append("")

    def handle_endtag(self, tag):
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data):
        if self._in_h1:
            self.h1[-1] += data


@functools.cache
def _parse(path: Path) -> _PageParser:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def html_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def site_base_path(site: Path) -> str:
    """The URL path the site is served under (``/`` if not known).

    MkDocs writes the site's full URLs in ``sitemap.xml``; pages such as
    ``404.html`` link with absolute paths under that prefix.
    """
    sitemap = Path(site) / "sitemap.xml"
    if sitemap.is_file():
        found = re.search(r"<loc>([^<]+)</loc>", sitemap.read_text())
        if found:
            path = urlsplit(found.group(1)).path
            return path[: path.rfind("/") + 1] or "/"
    return "/"


def check_links(site: Path) -> list[str]:
    """One line per broken internal link or anchor in the built site."""
    site = Path(site).resolve()
    base = site_base_path(site)
    _parse.cache_clear()
    problems = []
    for page in html_pages(site):
        for link in _parse(page).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("//"):
                continue  # external (http, https, mailto, data, ...)
            where = page.relative_to(site).as_posix()
            target = page
            if parts.path.startswith("/"):
                if not parts.path.startswith(base):
                    problems.append(f"{where}: {link!r} leaves the site")
                    continue
                target = (site / unquote(parts.path[len(base) :])).resolve()
                if target.is_dir():
                    target = target / "index.html"
            elif parts.path:
                target = (page.parent / unquote(parts.path)).resolve()
                if target.is_dir():
                    target = target / "index.html"
            if site not in target.parents:
                problems.append(f"{where}: {link!r} leaves the site")
                continue
            if not target.is_file():
                problems.append(f"{where}: {link!r} names no file")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html":
                if fragment not in _parse(target).ids:
                    problems.append(
                        f"{where}: {link!r}: no id {('#' + fragment)!r} in "
                        f"{target.relative_to(site).as_posix()}"
                    )
    return problems


def find_browser() -> str | None:
    """The path of a Chromium-family browser, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def _serve(site: Path):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


def _run_browser(browser, profile, args, timeout=60):
    return subprocess.run(
        [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def check_in_browser(
    site: Path, browser: str, screenshot: Path | None = None
) -> list[str]:
    """Load every page in headless Chromium; one line per page that fails."""
    site = Path(site).resolve()
    problems = []
    server = _serve(site)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with tempfile.TemporaryDirectory() as profile:
            for page in html_pages(site):
                relative = page.relative_to(site).as_posix()
                completed = _run_browser(
                    browser, profile, ["--dump-dom", base + relative]
                )
                dom = completed.stdout
                # Without the permalink sign MkDocs adds to headings.
                headings = [
                    h.replace("\u00b6", "").strip()
                    for h in _parse(page).h1
                    if h.strip()
                ]
                if completed.returncode != 0 or "<body" not in dom:
                    problems.append(
                        f"{relative}: the browser did not load it (status "
                        f"{completed.returncode}): {completed.stderr[-300:]}"
                    )
                elif "md-content" not in dom:
                    problems.append(f"{relative}: no article in the page")
                elif headings and html.escape(headings[0], quote=False)[
                    :20
                ] not in dom.replace("&nbsp;", " "):
                    problems.append(
                        f"{relative}: heading {headings[0]!r} not rendered"
                    )
            if screenshot is not None:
                screenshot = Path(screenshot).resolve()
                completed = _run_browser(
                    browser,
                    profile,
                    [
                        f"--screenshot={screenshot}",
                        "--window-size=1280,1000",
                        base + "index.html",
                    ],
                )
                if completed.returncode != 0 or not screenshot.exists():
                    problems.append(
                        "index.html: no screenshot written: "
                        + completed.stderr[-300:]
                    )
    finally:
        server.shutdown()
        server.server_close()
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("site", type=Path, help="the built site folder")
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        help="where to write a PNG of the home page "
        "(default: SITE/screenshot-home.png)",
    )
    parser.add_argument(
        "--require-browser",
        action="store_true",
        help="fail, instead of skipping, when no Chromium is found",
    )
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"{args.site}: no index.html: build the site first")
        return 1
    problems = check_links(args.site)
    pages = len(html_pages(args.site))
    print(f"links: {pages} pages checked, {len(problems)} problems")
    browser = find_browser()
    if browser is None:
        message = (
            "browser check skipped: no Chromium found (Debian/Ubuntu: "
            "apt-get install chromium)"
        )
        print(message)
        if args.require_browser:
            problems.append(message)
    else:
        screenshot = args.screenshot or args.site / "screenshot-home.png"
        found = check_in_browser(args.site, browser, screenshot=screenshot)
        print(
            f"browser: {pages} pages rendered in {browser}, "
            f"{len(found)} problems; screenshot: {screenshot}"
        )
        problems += found
    for problem in problems:
        print("FAIL:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
