"""The HTML report in a real headless browser (Debian's chromium): it loads with no console
error, every plot renders, tables sort, and the drill-down lists the attempts behind a row."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("statsmodels", reason="the report extra is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

from agentsignals import report  # noqa: E402
from test_report_build import judged_records  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = report.build(report.from_records(judged_records()), report.Options(replicates=300))
    return result.write_html(tmp_path_factory.mktemp("report") / "report.html")


def test_loads_offline_without_console_errors_and_every_plot_renders(browser, page: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    assert browser.find_element(By.TAG_NAME, "h1").text == "agentsignals report"
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    plots = browser.find_elements(By.CSS_SELECTOR, "svg.plot")
    # overview, labels, forest, numeric forest, distributions, paired, heatmap
    assert len(plots) >= 7
    for svg in plots:
        box = browser.execute_script(
            "const b = arguments[0].getBoundingClientRect();"
            "return [b.width, b.height, arguments[0].querySelectorAll('path,use,text').length];",
            svg,
        )
        assert box[0] > 200 and box[1] > 100 and box[2] > 5, svg.get_attribute("aria-label")
    # Nothing in the page points outside it.
    external = browser.execute_script(
        "return Array.from(document.querySelectorAll('[src],link[href]'))"
        ".map(e => e.getAttribute('src') || e.getAttribute('href'))"
        ".filter(u => !u.startsWith('data:') && !u.startsWith('#'));"
    )
    assert external == []


def test_drill_down_lists_the_attempts_behind_a_row(browser, page: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    row = browser.find_element(By.ID, "row-judge.memory_drift.match")
    with_res, with_fail = (c.text for c in row.find_elements(By.TAG_NAME, "td")[1:3])
    expected = int(with_res.split("/")[0]) + int(with_fail.split("/")[0])
    row.find_element(By.CSS_SELECTOR, "button.drill").click()
    panel = browser.find_element(By.ID, "drill")
    assert panel.is_displayed()
    rows = panel.find_elements(By.CSS_SELECTOR, "tr.attempt-row")
    assert len(rows) == expected
    assert panel.find_element(By.ID, "drill-count").text.startswith(f"{expected} attempts")
    statuses = {r.find_elements(By.TAG_NAME, "td")[4].text for r in rows}
    assert statuses <= {"resolved", "failed"} and len(statuses) == 2
    assert rows[0].find_elements(By.CSS_SELECTOR, ".steps .step")  # the step strip is drawn
    browser.find_element(By.ID, "drill-close").click()
    assert not panel.is_displayed()
    # An arm row of the overview drills to that arm's attempts.
    browser.find_element(By.CSS_SELECTOR, "#overview-table button.drill").click()
    arms = {
        r.find_elements(By.TAG_NAME, "td")[2].text
        for r in panel.find_elements(By.CSS_SELECTOR, "tr.attempt-row")
    }
    assert len(arms) == 1
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def test_origins_drill_down_points_at_the_first_wrong_step(browser, page: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    section = browser.find_element(By.ID, "origins")
    button = next(
        b
        for b in section.find_elements(By.CSS_SELECTOR, "button.drill")
        if b.get_attribute("data-val") == "implement"
    )
    browser.execute_script("arguments[0].scrollIntoView()", button)
    button.click()
    panel = browser.find_element(By.ID, "drill")
    assert panel.is_displayed()
    rows = panel.find_elements(By.CSS_SELECTOR, "tr.attempt-row")
    failed = sum(r["verification"]["reward"] == 0 for r in judged_records())
    assert len(rows) == failed
    assert panel.find_element(By.ID, "drill-value").text == "_fws.step"
    cells = {tuple(td.text for td in r.find_elements(By.TAG_NAME, "td")[4:6]) for r in rows}
    assert cells == {("failed", "S7 · span 00000000000000f7")}


def test_tables_sort(browser, page: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    table = browser.find_element(By.ID, "numeric-table")
    header = table.find_elements(By.TAG_NAME, "th")[3]  # mean resolved
    header.click()

    def values() -> list[float]:
        return [
            float(r.find_elements(By.TAG_NAME, "td")[3].text.replace(",", ""))
            for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")
        ]

    assert values() == sorted(values())
    header.click()
    assert values() == sorted(values(), reverse=True)
