"""The report as its reader sees it: results/report/index.html of the tiny run in headless
Chromium (Debian's, driven by Playwright), with the network cut off."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH = 1280

# every <img>: decoded, not empty, and not one flat colour (drawn on a canvas, pixel spread)
IMAGES_JS = """() => Array.from(document.images).map((img) => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  let spread = 0;
  if (img.naturalWidth > 0) {
    const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let lo = 255, hi = 0;
    for (let i = 0; i < d.length; i += 4 * 7) { const v = d[i] + d[i + 1] + d[i + 2];
      lo = Math.min(lo, v / 3); hi = Math.max(hi, v / 3); }
    spread = hi - lo;
  }
  return {alt: img.alt.slice(0, 60), complete: img.complete, w: img.naturalWidth, spread};
})"""

CARDS_JS = """() => Array.from(document.querySelectorAll('a.card')).map((a) => {
  const id = a.getAttribute('href').slice(1);
  return {label: a.textContent.slice(0, 60), target: id, exists: !!document.getElementById(id)};
})"""

TABLES_JS = """() => Array.from(document.querySelectorAll('table')).map((t) => {
  const box = (t.closest('.table-scroll') || t).getBoundingClientRect();
  return {caption: (t.caption ? t.caption.textContent : t.textContent).slice(0, 60),
          right: box.right};
})"""


@pytest.fixture(scope="module")
def page_of(tiny_run):
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if CHROMIUM is None:
        pytest.skip("no system Chromium (Debian package 'chromium'); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    report = tiny_run / "results/report/index.html"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        events = {"console_errors": [], "requests": []}
        page.on("console", lambda m: m.type == "error" and events["console_errors"].append(m.text))
        page.on("pageerror", lambda e: events["console_errors"].append(str(e)))

        def route(r):  # no network: anything but the file itself is refused and recorded
            if r.request.url.startswith(("file://", "data:")):
                r.continue_()
            else:
                events["requests"].append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(report.as_uri(), wait_until="load")
        yield page, events, browser.version
        browser.close()


def test_report_opens_offline_without_errors(page_of):
    page, events, version = page_of
    print(f"Chromium {version}")
    assert page.title() == "tiny"
    assert events["console_errors"] == []
    assert events["requests"] == []  # self-contained: no scripts, fonts or images from the network


def test_every_card_links_to_a_section(page_of):
    cards = page_of[0].evaluate(CARDS_JS)
    assert cards, "no 'At a glance' cards"
    assert [c for c in cards if not c["exists"]] == []


def test_every_image_decodes_and_is_not_blank(page_of):
    images = page_of[0].evaluate(IMAGES_JS)
    assert images
    bad = [i for i in images if not i["complete"] or i["w"] == 0 or i["spread"] < 10]
    assert bad == []


def test_no_table_is_wider_than_the_page(page_of):
    page = page_of[0]
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    wide = [t for t in page.evaluate(TABLES_JS) if t["right"] > WIDTH]
    assert wide == []


def test_no_card_or_note_overflows_its_box(page_of):
    """A long word (a URL in a skipped stage's reason) wraps inside its card or note."""
    over = page_of[0].evaluate(
        "[...document.querySelectorAll('.card, .note')]"
        ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.slice(0, 80))")
    assert over == []
