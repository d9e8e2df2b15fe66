"""The browser page of ``itemrec-edge serve`` in real headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) against a real server whose camera is a video file.

The run saves a screenshot to ``build/screenshots/serve-page.png`` (not committed).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from edge_helpers import ITEM_IMAGES
from serve_helpers import Server, camera_video, make_gallery, photo

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "build" / "screenshots" / "serve-page.png"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# As root, in a closed network: no sandbox, and none of Chromium's own connections.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1100",
)


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and DRIVER):
        reason = "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def text_of(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def test_the_page_scans_enrols_and_lists(browser, tmp_path, reference):
    images = reference["images"]
    db = make_gallery(tmp_path / "g.db", images)
    video = camera_video(tmp_path / "a.avi", images[ITEM_IMAGES["A"]], seconds=60)
    dates = [photo(tmp_path / f"dates{n}.png", images[3]) for n in (1, 2)]
    wait = WebDriverWait(browser, 30)
    with Server(db, camera=video) as server:
        browser.get(server.url + "/")
        # The camera shows item A: the page shows its name large, and the scan below.
        wait.until(lambda d: text_of(d, "current-name") == "Apple juice")
        wait.until(lambda d: "A · Apple juice" in text_of(d, "scans"))
        assert text_of(browser, "current-code") == "A"
        rows = browser.find_elements(By.CSS_SELECTOR, "#items tr")
        assert [row.get_attribute("data-code") for row in rows] == ["A", "B", "C"]

        # Enrol D with two photos through the form, as a phone would.
        browser.find_element(By.ID, "enroll-code").send_keys("D")
        browser.find_element(By.ID, "enroll-name").send_keys("Dates")
        browser.find_element(By.ID, "enroll-photos").send_keys("\n".join(map(str, dates)))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#photo-list li")) == 2)
        assert text_of(browser, "enroll-submit") == "Enrol with 2 photos"
        browser.find_element(By.ID, "enroll-submit").click()
        wait.until(lambda d: "D: 2 photos added" in text_of(d, "enroll-message"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#items tr[data-code="D"]'))

        # The next identification returns the new item.
        with server.client() as http:
            upload = {"image": ("dates.png", dates[0].read_bytes(), "image/png")}
            answer = http.post("/v1/identify", files=upload).json()
        assert (answer["code"], answer["name"]) == ("D", "Dates")

        # The live view is playing (the MJPEG stream decoded into the <img>).
        wait.until(lambda d: d.execute_script("return $('live').naturalWidth") == 320)
        wait.until(lambda d: "camera running" in text_of(d, "health"))
        browser.execute_script("window.scrollTo(0, 0)")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))
        assert server.stop() == 0


# Holds the page's first read of /v1/current until the test releases it, once the camera has
# confirmed item A (after showing item B for 6 s). A page that subscribed to the events after
# that read never showed A (CI's fast machine met that gap by chance).
HOLD_FIRST_READ = """
const realFetch = window.fetch;
window.fetch = async (path, options) => {
  const response = await realFetch(path, options);
  if (String(path) === "/v1/current" && !window.releaseFirstRead) {
    await new Promise((resolve) => { window.releaseFirstRead = resolve; });
  }
  return response;
};
"""


def test_a_scan_between_the_pages_first_read_and_its_subscription_is_shown(
    browser, tmp_path, reference
):
    images = reference["images"]
    db = make_gallery(tmp_path / "g.db", images)
    first = (images[ITEM_IMAGES["B"]], 6.0)  # ample time for the page to load meanwhile
    video = camera_video(tmp_path / "ba.avi", images[ITEM_IMAGES["A"]], 30, first=first)
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOLD_FIRST_READ})
    wait = WebDriverWait(browser, 30)
    with Server(db, camera=video) as server:
        browser.get(server.url + "/")
        wait.until(lambda d: d.execute_script("return Boolean(window.releaseFirstRead)"))
        scanned = lambda: [e["code"] for e in server.events() if e["event"] == "scan"]  # noqa: E731
        assert "A" not in scanned(), "the page read /v1/current after A's scan: no gap to test"
        WebDriverWait(server, 30).until(lambda _: "A" in scanned())
        assert text_of(browser, "current-name") == "nothing scanned yet"
        browser.execute_script("window.releaseFirstRead()")
        wait.until(lambda d: text_of(d, "current-name") == "Apple juice")
        scans = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#scans li")]
        assert len(scans) == 2, scans  # each scan once, newest first
        assert "A · Apple juice" in scans[0] and "B · Bread" in scans[1], scans
        assert server.stop() == 0
