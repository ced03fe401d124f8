"""The page of `unnparse serve`, in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
loads it from a running service, a sentence is typed and submitted, and the drawn tree is checked.

Set ``UNNPARSE_PAGE_SCREENSHOT=FILE.png`` to keep the screenshot (the README's is made so, with
``UNNPARSE_PAGE_MODEL=DIR`` naming the model to serve instead of the toy one).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.test_service import model_dir, start_service  # noqa: F401 - the fixture is used by name

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="headless Chromium is not installed (apt-get install chromium chromium-driver; .ci/run does it)",
)

SENTENCE = "The old man saw a small dog in the park."


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,960"):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=DRIVER)  # Selenium Manager would try the network
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_parses_a_sentence_and_draws_its_tree(model_dir, browser, tmp_path):  # noqa: F811
    served = Path(os.environ.get("UNNPARSE_PAGE_MODEL", model_dir))
    proc, address = start_service(served, name="toy" if served == model_dir else served.name)
    try:
        browser.get(address + "/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: len(Select(d.find_element(By.ID, "model")).options) == 1)
        box = browser.find_element(By.ID, "input")
        box.clear()
        box.send_keys(SENTENCE)
        browser.find_element(By.ID, "marginals").click()
        browser.find_element(By.ID, "parse").click()
        wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#trees svg.tree")))
        svgs = browser.find_elements(By.CSS_SELECTOR, "#trees svg.tree")
        words = ["The", "old", "man", "saw", "a", "small", "dog", "in", "the", "park", "."]
        assert len(svgs) == 1
        tree = svgs[0]
        drawn = [t.text for t in tree.find_elements(By.CSS_SELECTOR, "text.word")]
        arcs = tree.find_elements(By.CSS_SELECTOR, "g.arc")
        roots = tree.find_elements(By.CSS_SELECTOR, "g.root")
        labels = [t.text for t in tree.find_elements(By.CSS_SELECTOR, "text.label")]
        assert drawn == words
        assert len(arcs) + len(roots) == len(words) and len(roots) == 1  # one arc per word, the root's from the top
        assert len(labels) == len(words) and all(labels)
        assert all(arc.find_element(By.TAG_NAME, "title").get_attribute("textContent") for arc in arcs)  # hover
        conllu = browser.find_element(By.ID, "conllu").get_attribute("textContent")
        assert conllu.startswith("# sent_id = 1\n# text = " + SENTENCE) and "ArcProb=" in conllu
        assert "1 sentence(s), 11 word(s)" in browser.find_element(By.ID, "status").text
        browser.find_element(By.CSS_SELECTOR, "#conllu-box summary").click()  # the CoNLL-U, shown
        assert browser.find_element(By.ID, "conllu").is_displayed()
        shot = Path(os.environ.get("UNNPARSE_PAGE_SCREENSHOT", tmp_path / "page.png"))
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        # an error is shown on the page, in one line
        Select(browser.find_element(By.ID, "input-format")).select_by_value("conllu")
        box.clear()
        box.send_keys("1\tDogs")
        browser.find_element(By.ID, "parse").click()
        wait.until(lambda d: "columns" in d.find_element(By.ID, "status").text)
        assert "<request>:1:" in browser.find_element(By.ID, "status").text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
