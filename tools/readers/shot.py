#!/usr/bin/env python3
"""Screenshot a built page: shot.py <abs html path> <out.png> [width=1280] [dark] [css selector]
Run with a python that has playwright (the project's .venv)."""
import sys

from playwright.sync_api import sync_playwright

path, out = sys.argv[1], sys.argv[2]
width = int(sys.argv[3]) if len(sys.argv) > 3 else 1280
dark = len(sys.argv) > 4 and sys.argv[4] == "dark"
sel = sys.argv[5] if len(sys.argv) > 5 else None
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"])
    pg = b.new_page(viewport={"width": width, "height": 900}, color_scheme="dark" if dark else "light")
    pg.goto("file://" + path)
    pg.wait_for_timeout(1500)
    if dark:
        pg.evaluate("document.documentElement.dataset.theme='dark'")
        pg.wait_for_timeout(300)
    if sel:
        pg.locator(sel).first.screenshot(path=out)
    else:
        pg.screenshot(path=out, full_page=True)
    b.close()
