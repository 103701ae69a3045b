"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver through Selenium), served
by the real command (``archai-aml dashboard`` as a child process): a small search seen live and checked
against its ``pareto.json``; hostile strings that show as text and run nothing; the token of a
non-loopback host; and a store outage (Azurite stopped and started) that shows a banner over the last data.

Without Chromium these tests skip saying so; under CI (``CI=true``) they fail instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from archai_aml.config import StoreConfig
from archai_aml.plots import pareto_front
from archai_aml.store import open_store
from archai_aml.testing.azurite import AzuriteError, run_azurite
from archai_aml.testing.browser import find_chromium, headless_chromium
from archai_aml.testing.dashboard import HOSTILE_ERROR, HOSTILE_ID, DashboardProcess, seed_experiment
from tests.test_search_example import CONFIG, run_search

ROOT = Path(__file__).resolve().parents[1]
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("ARCHAI_AML_")}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    found = find_chromium()
    if isinstance(found, str):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the dashboard's browser tests cannot run: {found}", pytrace=False)
        pytest.skip(f"no headless Chromium for the dashboard's browser tests: {found}")
    with headless_chromium() as driver:
        yield driver


def wait(driver: Any, seconds: float, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.1).until(condition, message=what)


def points(driver: Any) -> list[dict[str, Any]]:
    """The front's circles as the page drew them."""
    return driver.execute_script(  # type: ignore[no-any-return]
        "return Array.from(document.querySelectorAll('#front circle.point')).map(c => ({"
        "name: c.getAttribute('data-name'), x: Number(c.getAttribute('data-x')),"
        "y: Number(c.getAttribute('data-y')), iteration: Number(c.getAttribute('data-iteration')),"
        "front: c.classList.contains('on-front')}))"
    )


def table_names(driver: Any) -> list[str]:
    return driver.execute_script(  # type: ignore[no-any-return]
        "return Array.from(document.querySelectorAll('#status-table tbody tr')).map(r => r.getAttribute('data-name'))"
    )


def nothing_ran(driver: Any, title: str) -> None:
    assert driver.execute_script("return window.__pwned === undefined"), "a payload ran"
    assert driver.title == title
    assert driver.execute_script("return document.images.length") == 0  # no <img> made from data
    assert driver.execute_script("return document.scripts.length") == 1  # only /static/dashboard.js


@pytest.mark.slow
def test_a_small_search_seen_live_matches_its_pareto_json(tmp_path: Path, browser: Any) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "out"
    env = {**CLEAN_ENV, "ARCHAI_AML_STORE": str(out / "store")}
    with (
        ThreadPoolExecutor(1) as pool,
        DashboardProcess(["--experiment", "tiny", "--interval", "0.3"], env) as dash,
    ):
        search = pool.submit(run_search, config, out)
        browser.get(dash.url)
        # the table and the front show the first iteration's two models while the search runs
        wait(browser, 170, lambda d: len(points(d)) >= 2 and len(table_names(d)) >= 2, "the first models")
        assert {p["iteration"] for p in points(browser)} == {1}
        search.result(timeout=200)
        pareto = json.loads((out / "pareto.json").read_text(encoding="utf-8"))["models"]
        expected = {f"id_{m['archid']}": (m["latency_ms"], m["val_iou"]) for m in pareto}

        def drawn_as_expected(d: Any) -> bool:
            drawn = {p["name"]: (p["x"], p["y"]) for p in points(d)}
            return all(
                n in drawn and drawn[n] == pytest.approx(xy, rel=1e-9, abs=1e-12)
                for n, xy in expected.items()
            )

        wait(browser, 20, drawn_as_expected, "every pareto.json model at its latency and IoU")
        # the page's front of (latency, IoU) is that of pareto.json's models (a 2-objective front of all
        # models lies inside the search's 3-objective front)
        names = list(expected)
        front = pareto_front([expected[n] for n in names], maximize=[False, True])
        assert {p["name"] for p in points(browser) if p["front"]} == {names[i] for i in front}
        browser.save_screenshot(str(tmp_path / "dashboard.png"))
        assert (tmp_path / "dashboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        name = names[front[0]]
        browser.execute_script(
            "Array.from(document.querySelectorAll('#status-table a.model-link'))"
            ".find(a => a.textContent === arguments[0]).click()",
            name,
        )
        wait(browser, 20, lambda d: d.find_element("id", "model-name").text == name, "the model's page")
        links = wait(browser, 10, lambda d: d.find_elements("css selector", "a.download"), "its downloads")
        hrefs = [a.get_attribute("href") for a in links]
        assert all(h.startswith(dash.base + "download?") for h in hrefs), hrefs
        onnx_link = next(h for h in hrefs if h.endswith("blob=model.onnx"))
        import onnx

        onnx.load_model_from_string(httpx.get(onnx_link, timeout=30).content)  # a real ONNX model
        assert "mean" in browser.find_element("id", "sources-table").text  # where the latency came from
        browser.save_screenshot(str(tmp_path / "model.png"))


def test_hostile_strings_show_as_text_and_run_nothing(tmp_path: Path, browser: Any) -> None:
    store = open_store(StoreConfig(path=tmp_path / "store"))
    seed_experiment(store, "hostile", 5)  # id_0004's latency is simulated
    store.create(
        "hostile", HOSTILE_ID, {"status": "error", "error": HOSTILE_ERROR, "note": HOSTILE_ERROR, "val_iou": 0.99,
                                "iteration": 2},
    )  # fmt: skip
    store.create(
        "hostile-latency", HOSTILE_ID,
        {"status": "error", "mean": 0.5, "error": HOSTILE_ERROR, "log_path": "javascript:window.__pwned=6",
         "sources": json.dumps({"mean": HOSTILE_ERROR})},
    )  # fmt: skip
    store.upload_bytes("hostile-latency", HOSTILE_ID, "logs/<img src=x onerror=window.__pwned=7>.log", b"x")
    store.close()
    title = "archai-aml dashboard: hostile"
    env = {**CLEAN_ENV, "ARCHAI_AML_STORE": str(tmp_path / "store")}
    with DashboardProcess(["--experiment", "hostile", "--interval", "0.3"], env) as dash:
        browser.get(dash.url)
        wait(browser, 30, lambda d: HOSTILE_ID in table_names(d), "the hostile row")
        wait(browser, 10, lambda d: d.find_elements("id", "failures-table"), "the failures")
        text = browser.find_element("tag name", "body").text
        assert HOSTILE_ID in text  # shown as text
        assert "<script>window.__pwned=5</script>" in text and 'onerror="window.__pwned=3;' in text
        assert "javascript:window.__pwned=6" in text
        hostile_point = next(p for p in points(browser) if p["name"] == HOSTILE_ID)
        assert hostile_point["front"]  # fastest and best: drawn on the front, its name as data only
        browser.execute_script(
            "Array.from(document.querySelectorAll('#front circle.point'))"
            ".find(c => c.getAttribute('data-name') === arguments[0])"
            ".dispatchEvent(new MouseEvent('mouseenter', {clientX: 5, clientY: 5}))",
            HOSTILE_ID,
        )
        assert HOSTILE_ID in browser.find_element("id", "tooltip").text
        simulated = browser.execute_script(
            "const c = document.querySelector('#front circle[data-name=\"id_0004\"]');"
            "return [c.classList.contains('simulated'), c.querySelector('title').textContent]"
        )
        assert simulated[0] and "mean: " in simulated[1] and "(simulated)" in simulated[1]  # marked as such
        hrefs = browser.execute_script("return Array.from(document.links).map(a => a.getAttribute('href'))")
        assert hrefs and all(h.startswith("/") and not h.startswith("//") for h in hrefs), hrefs
        nothing_ran(browser, title)

        browser.get(dash.base + "model?" + urlencode({"experiment": "hostile", "name": HOSTILE_ID}))
        wait(browser, 20, lambda d: d.find_element("id", "model-name").text == HOSTILE_ID, "the model page")
        wait(browser, 10, lambda d: d.find_elements("css selector", "a.download"), "the log's download")
        page = browser.find_element("tag name", "body").text
        assert "logs/<img src=x onerror=window.__pwned=7>.log" in page and HOSTILE_ERROR[:40] in page
        nothing_ran(browser, title)


def test_a_non_loopback_host_needs_its_token(tmp_path: Path, browser: Any) -> None:
    store = open_store(StoreConfig(path=tmp_path / "store"))
    seed_experiment(store, "tok", 3)
    store.close()
    env = {**CLEAN_ENV, "ARCHAI_AML_STORE": str(tmp_path / "store")}
    # the rule: anything but 127.0.0.1, localhost and ::1 needs a token; 127.0.0.2 keeps traffic on loopback
    refused = subprocess.run(
        [sys.executable, "-m", "archai_aml.cli", "dashboard", "--host", "127.0.0.2", "--port", "0"],
        env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2 and "needs a token" in refused.stderr and not refused.stdout
    args = ["--experiment", "tok", "--host", "127.0.0.2", "--generate-token", "--interval", "0.3"]
    with DashboardProcess(args, env, log_level="DEBUG") as dash:
        assert dash.url.startswith("http://127.0.0.2:")
        token = parse_qs(urlsplit(dash.url).query)["token"][0]
        assert len(token) >= 16
        for path in ("", "api/state", "static/dashboard.js"):
            assert httpx.get(dash.base + path, timeout=10).status_code == 401
        browser.get(dash.base)
        assert "needs its token" in browser.find_element("tag name", "body").text
        browser.get(dash.url)  # the printed address: the token becomes a cookie, the address drops it
        wait(browser, 30, lambda d: len(table_names(d)) == 3, "the table behind the token")
        assert "token" not in browser.current_url
        browser.delete_all_cookies()
    assert dash.stdout.count(token) == 1  # printed once, to the console
    assert token not in dash.stderr  # never in a log line (DEBUG included)


@pytest.mark.azure
def test_an_outage_shows_a_banner_over_the_last_data(tmp_path: Path, browser: Any) -> None:
    try:
        manager = run_azurite(location=tmp_path / "azurite")
        azurite = manager.__enter__()
    except AzuriteError as exc:
        pytest.fail(f"{exc} (the azure tests need it: run `make azurite`)", pytrace=False)
    try:
        table = "dash" + uuid.uuid4().hex[:8]
        config = azurite.store_config(table_name=table, container_name="dash")
        with open_store(config) as store:
            seed_experiment(store, "out", 5)
        env = {
            **CLEAN_ENV,
            "ARCHAI_AML_STORE": azurite.connection_string,
            "ARCHAI_AML_STORE_TABLE": table,
            "ARCHAI_AML_STORE_CONTAINER": "dash",
        }
        with DashboardProcess(["--experiment", "out", "--interval", "0.3"], env) as dash:
            browser.get(dash.url)
            wait(browser, 30, lambda d: len(table_names(d)) == 5, "the table")
            banner = browser.find_element("id", "banner")
            assert not banner.is_displayed()
            azurite.stop()
            wait(
                browser,
                20,
                lambda d: banner.is_displayed() and "does not answer" in banner.text,
                "the banner",
            )
            assert len(table_names(browser)) == 5 and len(points(browser)) == 5  # the last data stays
            browser.save_screenshot(str(tmp_path / "outage.png"))
            azurite.start()
            with open_store(config) as store:
                store.merge("out", "id_0000", {"status": "after-outage"})
            wait(
                browser, 30,
                lambda d: not banner.is_displayed() and "after-outage" in d.find_element("id", "status-table").text,
                "the recovery",
            )  # fmt: skip
            api = httpx.get(dash.base + "api/state", params={"experiment": "out"}, timeout=10).text
            page = browser.page_source
        seen = api + page + dash.stdout + dash.stderr
        assert azurite.account_key not in seen and azurite.account_key[:20] not in seen  # no secret anywhere
        assert "does not answer" in dash.stderr and "answers again" in dash.stderr  # logged once each
    finally:
        manager.__exit__(None, None, None)
