"""The console as people meet it: a real browser (headless Chromium driven by Selenium)
on the console process, which speaks to the shared running system's gateway.

The browser is found on this machine; where it is missing and this is a root shell with
apt-get, Debian's `chromium` and `chromium-driver` are installed; otherwise the tests
fail and say what to install. With ATRIUM_CONSOLE_SCREENSHOTS=<folder> the journeys
also save a PNG of each main screen there (1280 by 800, and one at phone width):

    ATRIUM_CONSOLE_SCREENSHOTS=docs/screenshots \
        .venv/bin/pytest -p no:cacheprovider tests/e2e/console
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from infra.processes import free_port
from infra.sandbox import Sandbox
from shared.settings import REPO
from shared.testing import STOP_TIMEOUT_SECONDS, wait_answering
from tests.e2e.conftest import RunningSystem

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DESKTOP = (1280, 800)
PHONE = (390, 844)
NAVIGATION_TIMEOUT_SECONDS = 15
SCREENSHOTS = os.environ.get("ATRIUM_CONSOLE_SCREENSHOTS")


@dataclass(frozen=True)
class BrowserPaths:
    browser: str
    driver: str


def find_browser() -> BrowserPaths | None:
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return BrowserPaths(browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def browser_paths() -> BrowserPaths:
    found = find_browser()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], check=True
        )
        found = find_browser()
    if found is None:
        pytest.fail(
            "The console's tests drive a real browser: install Chromium and its driver "
            "(Debian/Ubuntu: apt-get install chromium chromium-driver) so that `chromium` "
            "and `chromedriver` are on PATH."
        )
    return found


@dataclass
class Console:
    url: str
    process: subprocess.Popen[bytes]
    log_file: Path


@pytest.fixture(scope="module")
def console(system: RunningSystem, atrium: Sandbox, log_dir: Path) -> Iterator[Console]:
    """`python -m services.console` on a port of its own, against the system's gateway,
    with the development sign-in on (signing with the sandbox's secret)."""
    port = free_port()
    log_file = log_dir / f"console-{port}.log"
    environment = {
        **os.environ,
        **atrium.environment,
        "ATRIUM_CONSOLE_PORT": str(port),
        "ATRIUM_CONSOLE_GATEWAY_URL": system.gateway.url,
        "ATRIUM_CONSOLE_DEVELOPMENT_SIGN_IN": "true",
    }
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.console"],
            env=environment,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    running = Console(f"http://127.0.0.1:{port}", process, log_file)
    try:
        wait_answering(
            f"{running.url}/healthz",
            [process],
            port,
            name="the console",
            log_tail=log_file.read_text,
            timeout=30,
        )
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser(browser_paths: BrowserPaths) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = browser_paths.browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(browser_paths.driver))
    driver.implicitly_wait(0)
    _viewport(driver, DESKTOP, mobile=False)
    try:
        yield driver
    finally:
        driver.quit()


def _viewport(driver: WebDriver, size: tuple[int, int], *, mobile: bool) -> None:
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


class Page:
    """The browser on the console, as one person at a time."""

    def __init__(self, driver: WebDriver, console: Console) -> None:
        self.driver = driver
        self.console = console

    def open(self, path: str) -> Page:
        self.driver.get(f"{self.console.url}{path}")
        return self

    def sign_in(self, email: str) -> Page:
        self.driver.delete_all_cookies()
        self.open("/sign-in")
        self.fill("#email", email)
        self.submit("#development-sign-in")
        assert "You are signed in." in self.text(".notice")
        return self

    def find(self, selector: str) -> WebElement:
        """The element, or a failure that tells what the page showed instead."""
        try:
            return self.driver.find_element(By.CSS_SELECTOR, selector)
        except NoSuchElementException:
            shown = self.driver.find_element(By.TAG_NAME, "main").text
            pytest.fail(f"no {selector} on {self.driver.current_url}, which shows:\n{shown}")

    def all(self, selector: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def text(self, selector: str) -> str:
        return self.find(selector).text

    def fill(self, selector: str, value: str) -> None:
        field = self.find(selector)
        field.clear()
        field.send_keys(value)

    def press(self, selector: str) -> None:
        """Click what leads to another page, and wait until that page has loaded."""
        self.navigating(self.find(selector).click)

    def navigating(self, action: Callable[[], object]) -> None:
        """Do what loads another page, and wait until it has (the old page gone)."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        action()
        waiting = WebDriverWait(self.driver, NAVIGATION_TIMEOUT_SECONDS)
        waiting.until(lambda _: _gone(old))
        waiting.until(
            lambda driver: driver.execute_script("return document.readyState") == "complete"
        )

    def submit(self, form_selector: str) -> None:
        """Press the form's submit button, as a person would."""
        self.press(f"{form_selector} button[type=submit]")

    def confirm(self) -> None:
        """Answer yes on a confirmation page."""
        self.press("form.confirm button[type=submit]")

    def link(self, text: str) -> None:
        self.navigating(self.driver.find_element(By.LINK_TEXT, text).click)

    def problem(self) -> str:
        return self.text(".problem")

    def screenshot(self, name: str, *, phone: bool = False) -> None:
        """A PNG of the screen in ATRIUM_CONSOLE_SCREENSHOTS, when it is set."""
        if not SCREENSHOTS:
            return
        folder = Path(SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        if phone:
            _viewport(self.driver, PHONE, mobile=True)
            self.driver.refresh()
        try:
            self.driver.save_screenshot(str(folder / f"{name}.png"))
        finally:
            if phone:
                _viewport(self.driver, DESKTOP, mobile=False)


@pytest.fixture
def page(browser: WebDriver, console: Console) -> Page:
    return Page(browser, console)


@pytest.fixture
async def api(system: RunningSystem) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway, for setting up accounts and for checking what the console did."""
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=30) as client:
        yield client


def _gone(element: WebElement) -> bool:
    """Whether the page holding `element` has been replaced. Chromium says so with a
    stale reference, or, when asked while the new document is being put in place, with
    "Node with given id does not belong to the document" (which selenium's own
    `staleness_of` does not take as an answer)."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error):
            return True
        raise
    return False
