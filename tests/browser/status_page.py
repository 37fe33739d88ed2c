#!/usr/bin/env python3
"""Browser test of the status page: headless Chromium opens the page of a
running demo and checks that the tag table fills, the counters move and the
search filters; screenshots (laptop and phone sizes) are kept as artifacts.

Usage: status_page.py PATH/TO/dataservice-sync ARTIFACT_DIR
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

DEVICES, TAGS = 3, 8


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
            last = f"last value {value!r}"
        except Exception as e:  # the page or the server is not there yet
            last = f"last error {type(e).__name__}: {e}".strip()
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} ({last})")


def main():
    binary, artifacts = sys.argv[1], sys.argv[2]
    os.makedirs(artifacts, exist_ok=True)
    port = free_port()
    address = f"127.0.0.1:{port}"
    demo = subprocess.Popen(
        [binary, "demo", "--duration", "0", "--devices", str(DEVICES), "--tags", str(TAGS),
         "--status-listen", address],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = tempfile.mkdtemp(prefix="status-page-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1280,900"]:
        options.add_argument(flag)
    driver = None
    try:
        wait_for(lambda: urllib.request.urlopen(f"http://{address}/health", timeout=1) or True,
                 20, "the demo's status server")
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.get(f"http://{address}/")
        assert driver.title == "dataservice-sync", driver.title

        def key_cells():
            # One script call: the page re-renders the table every second, and
            # reading the cells one WebDriver call at a time can straddle a
            # re-render (stale elements, again and again on a busy machine).
            return driver.execute_script(
                "return Array.from(document.querySelectorAll('#tag-rows td.key'), c => c.textContent)")

        keys = wait_for(lambda: len(key_cells()) == DEVICES * TAGS and key_cells(), 20,
                        f"{DEVICES * TAGS} rows in the tag table")
        expected = [f"Device-{d}.tag-{t}" for d in range(DEVICES) for t in range(TAGS)]
        assert keys == expected, keys
        wait_for(lambda: driver.find_element(By.ID, "peer-source").text == "up", 10,
                 "the polling service shown up")

        def writes_ok():
            return int(driver.find_element(By.ID, "c-successful_writes").text.replace(",", ""))

        first = wait_for(lambda: writes_ok() > 0 and writes_ok(), 20, "acknowledged writes")
        later = wait_for(lambda: writes_ok() > first and writes_ok(), 20, "the counter to move")
        api = json.load(urllib.request.urlopen(f"http://{address}/api/stats", timeout=5))
        assert api["successful_writes"] >= later, (api["successful_writes"], later)
        wait_for(lambda: driver.find_element(By.ID, "spark").get_attribute("points").count(",") >= 2,
                 20, "the throughput sparkline")

        box = driver.find_element(By.ID, "search")
        box.send_keys("device-1.")
        filtered = wait_for(lambda: len(key_cells()) == TAGS and key_cells(), 10,
                            "the search to filter the table")
        assert filtered == [f"Device-1.tag-{t}" for t in range(TAGS)], filtered
        assert driver.find_element(By.ID, "tag-count").text == f"1–{TAGS} of {TAGS} matching ({DEVICES * TAGS} in all)"
        driver.save_screenshot(os.path.join(artifacts, "status-page.png"))
        driver.set_window_size(390, 844)
        time.sleep(1.5)
        driver.save_screenshot(os.path.join(artifacts, "status-page-phone.png"))
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide on a 390px phone screen"
        print(f"status page: {len(keys)} tags listed, writes ok {first} -> {later}, "
              f"search filtered to {len(filtered)}; screenshots in {artifacts}")
    finally:
        if driver is not None:
            driver.quit()
        demo.terminate()
        demo.wait(timeout=15)


if __name__ == "__main__":
    main()
