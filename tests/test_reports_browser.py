"""The leaderboard page in a real headless browser (Debian's chromium + chromedriver, driven by Selenium):
it loads from ``file://``, sorts, filters, and logs no console error. A screenshot is kept under the
test's tmp dir, and copied to ``$D2M_BENCH_SCREENSHOT_DIR`` when set (the lead's results/)."""

import os
import shutil

import pytest
from synthetic_records import StoreBuilder, pixel_set

from benchmark.leaderboard import write_reports

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason="no headless browser: apt-get install chromium chromium-driver")
# As root, offline: no sandbox, no GPU, no background connections (refused here, slow to fail).
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def visible_rows(driver) -> list:
    return [r for r in driver.find_elements(By.CSS_SELECTOR, "#results-table tbody tr") if r.is_displayed()]


def column(driver, index: int) -> list[str]:
    return [r.find_elements(By.TAG_NAME, "td")[index].text for r in visible_rows(driver)]


def test_page_loads_sorts_filters_without_console_errors(browser, tmp_path):
    builder = StoreBuilder(tmp_path / "results")
    for method, ipc, accs in (("random", 1, [30.0, 34.0]), ("herding", 1, [40.0, 41.0]), ("random", 10, [80.0, 82.0]),
                              ("herding", 10, [70.0, 71.0])):
        builder.evaluate(builder.distill(method, ipc, artifact=pixel_set(ipc)), ipc, accs)
    builder.evaluate(builder.distill("random", 10, seed=1), 10, [60.0, 61.0], arch="mlp")
    builder.evaluate(builder.distill("full", None, serves_any=True), None, [97.0, 98.0])
    builder.fail("eval", "kcenter", 10)
    write_reports(builder.store.root)

    browser.get((builder.store.root / "index.html").as_uri())
    assert browser.title == "D2M-Bench leaderboard"
    assert len(visible_rows(browser)) == 6 and browser.find_element(By.ID, "shown").text == "6 result rows shown"

    header = browser.find_element(By.XPATH, "//table[@id='results-table']//th[text()='accuracy (%)']")
    header.click()
    ascending = column(browser, 5)
    assert ascending == sorted(ascending, key=lambda t: float(t.split()[0])) and ascending[0] == "32.00 ± 2.00"
    header.click()
    assert column(browser, 5) == ascending[::-1] and header.get_attribute("aria-sort") == "descending"

    Select(browser.find_element(By.ID, "filter-ipc")).select_by_value("10")
    assert sorted(column(browser, 2)) == ["10", "10", "10", "whole"]  # the whole-set row stays as reference
    Select(browser.find_element(By.ID, "filter-arch")).select_by_value("mlp")
    assert column(browser, 1) == ["random"] and browser.find_element(By.ID, "shown").text == "1 result rows shown"
    synthetic = browser.find_elements(By.CSS_SELECTOR, "#images figure")
    assert [f.is_displayed() for f in synthetic] == [False, True, False, True]  # IPC 1 grids hidden, 10 shown
    Select(browser.find_element(By.ID, "filter-ipc")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-arch")).select_by_value("")
    assert len(visible_rows(browser)) == 6

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    shot = tmp_path / "leaderboard.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("D2M_BENCH_SCREENSHOT_DIR"):
        shutil.copy(shot, os.environ["D2M_BENCH_SCREENSHOT_DIR"])
