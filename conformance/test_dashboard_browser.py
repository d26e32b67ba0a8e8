"""The web dashboard in a real browser: headless Debian chromium driven by selenium.

A ``pydockerd-dashboard`` subprocess fronts the engine under test (the pydockerd the suite
starts, or ``CONFORMANCE_DOCKER_HOST``); the browser logs in with the token it printed and does
what a person would: run a container, read its live logs, use its terminal, watch its stats, stop
and remove it, pull an image from the local registry, create and remove a network and a volume.
The engine's own view (docker-py) is the judge of what happened. Screenshots of each page are
written to ``$CONFORMANCE_ARTIFACTS/dashboard`` (or a pytest temporary directory).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from conformance.browser import IsolatedStack, artifacts_dir, stack_fixture, wait_for
from conformance.cli import DockerCLI
from conformance.conftest import Engine
from conformance.containerkit import unique
from conformance.imagetools import tiny_layer
from conformance.registry import LocalRegistry, registry, remove_repository
from conformance.tracker import ResourceTracker

__all__ = ["registry"]  # fixture

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def dashboard(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedStack]:
    """The dashboard for the engine under test, with chromedriver, in a private network namespace."""
    yield from stack_fixture(engine.host, tmp_path_factory)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return artifacts_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def browser(dashboard: IsolatedStack) -> Iterator[Any]:
    driver = dashboard.browser()
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The dashboard as the test sees it through the browser."""

    def __init__(self, driver: Any, dashboard: IsolatedStack, shots: Path) -> None:
        from selenium.webdriver.common.by import By

        self.d = driver
        self.dashboard = dashboard
        self.shots = shots
        self.by = By

    def login(self) -> None:
        """Open the printed URL (token in the fragment); the app exchanges it for a cookie."""
        self.d.get(self.dashboard.url)
        try:
            wait_for(lambda: self.d.find_element(self.by.ID, "nav").is_displayed(), 20, "the navigation")
        except AssertionError:
            self.shot("00-login-failed")
            raise AssertionError(f"login failed (screenshot 00-login-failed.png)\n{self.dashboard.log_text()}")

    def go(self, hash_: str, title: str) -> None:
        self.d.execute_script("location.hash = arguments[0]", hash_)
        wait_for(lambda: self.d.find_element(self.by.CSS_SELECTOR, "main h1").text == title, 20, f"page {title!r}")

    def css(self, selector: str) -> Any:
        return self.d.find_element(self.by.CSS_SELECTOR, selector)

    def xpath(self, path: str) -> Any:
        return self.d.find_element(self.by.XPATH, path)

    def fill(self, selector: str, text: str) -> None:
        el = self.css(selector)
        el.clear()
        el.send_keys(text)

    def row(self, text: str) -> Any:
        return self.xpath(f"//main//tr[.//*[normalize-space()='{text}']]")

    def has_row(self, text: str) -> bool:
        return bool(self.d.find_elements(self.by.XPATH, f"//main//tr[.//*[normalize-space()='{text}']]"))

    def click_row_action(self, text: str, action: str) -> None:
        """Click an action of a row; the list re-renders on engine events, so a button that
        went stale is looked up again."""
        def click() -> bool:
            self.row(text).find_element(self.by.CSS_SELECTOR, f"button[data-action='{action}']").click()
            return True

        wait_for(click, 20, f"{action} on {text}")

    def confirm(self) -> None:
        wait_for(lambda: self.xpath("//dialog[@open]//button[@value='ok']"), 10, "the confirmation").click()

    def shot(self, name: str) -> None:
        self.d.save_screenshot(str(self.shots / f"{name}.png"))


@pytest.fixture
def page(browser: Any, dashboard: IsolatedStack, shots: Path) -> Page:
    p = Page(browser, dashboard, shots)
    p.login()
    return p


def _state(api: docker.APIClient, ident: str) -> str:
    return str(api.inspect_container(ident)["State"]["Status"])


def test_container_from_run_to_remove(page: Page, api_client: docker.APIClient, tracker: ResourceTracker,
                                      busybox_image: str) -> None:
    page.shot("01-containers")
    name = tracker.container(unique("dash"))
    page.css("details.run > summary").click()
    page.fill("form[aria-label='Run a container'] input[name=image]", busybox_image)
    page.fill("form[aria-label='Run a container'] input[name=name]", name)
    page.fill("form[aria-label='Run a container'] input[name=cmd]",
              "sh -c 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done'")
    preview = page.css("form[aria-label='Run a container'] code.preview").text
    assert preview.startswith("docker run -d --name " + name) and "busybox" in preview
    page.shot("02-run-form")
    page.css("form[aria-label='Run a container'] button[data-action='run']").click()

    # the app opens the new container's page; the engine says it runs
    wait_for(lambda: page.css("main h1").text == name, 30, "the container page")
    wait_for(lambda: _state(api_client, name) == "running", 30, "the container to run")
    wait_for(lambda: page.css("main .page-header .badge").text == "running", 20, "the running badge")
    page.shot("03-container-overview")

    cid = api_client.inspect_container(name)["Id"]
    # live logs: lines appear while the page is open, newer than the first ones seen
    page.go(f"#/containers/{cid}/logs", name)
    first = wait_for(lambda: max(map(int, re.findall(r"tick-(\d+)", page.css("#log-output").text))), 30, "log lines")
    wait_for(lambda: max(map(int, re.findall(r"tick-(\d+)", page.css("#log-output").text))) >= first + 2, 30,
             "new log lines written after the page opened")
    page.shot("04-logs")

    # stats: the charts get new points from the engine's stats stream
    page.go(f"#/containers/{cid}/stats", name)
    wait_for(lambda: int(page.css(".charts").get_attribute("data-points") or 0) >= 3, 60, "three stats samples")
    assert len(page.d.find_elements(page.by.CSS_SELECTOR, ".charts .uplot canvas")) == 4
    page.shot("05-stats")

    # terminal: an exec with a TTY; type `echo hi`, read `hi` back from the terminal
    page.go(f"#/containers/{cid}/terminal", name)
    wait_for(lambda: page.css("#term-status").text == "connected", 30, "the terminal to connect")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    page.css("#terminal").click()
    ActionChains(page.d).send_keys("echo hi" + Keys.ENTER).perform()
    screen_js = ("const b = window.__term.buffer.active; const out = [];"
                 "for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true)); return out;")
    wait_for(lambda: "hi" in [line.strip() for line in page.d.execute_script(screen_js)], 20, "`hi` in the terminal")
    # the exec's TTY has the terminal's size (resize reached the engine)
    rows, cols = page.d.execute_script("return [window.__term.rows, window.__term.cols]")
    ActionChains(page.d).send_keys("stty size" + Keys.ENTER).perform()
    wait_for(lambda: f"{rows} {cols}" in [line.strip() for line in page.d.execute_script(screen_js)], 20,
             f"`{rows} {cols}` from stty size")
    page.shot("06-terminal")

    # processes (docker top) and a file downloaded as a tar (docker cp)
    page.go(f"#/containers/{cid}/top", name)
    wait_for(lambda: "sh -c i=0;" in page.css("#tab-panel table").text, 20, "the container's shell in the process table")
    page.go(f"#/containers/{cid}/files", name)
    status, kind, size = page.d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(document.querySelector('main a[download]').href)"
        ".then((r) => r.arrayBuffer().then((b) => done([r.status, r.headers.get('content-type'), b.byteLength])));")
    assert (status, kind) == (200, "application/x-tar") and size >= 1024

    # stop, then remove, from the list; "copy as CLI" beside Stop names the same command
    page.go("#/containers", "Containers")
    wait_for(lambda: page.row(name).find_element(page.by.XPATH, ".//button[@data-action='stop']/../button[@class='cli']"),
             20, "the CLI button beside Stop").click()
    wait_for(lambda: page.css("#last-cli").text == f"docker stop {name}", 10, "the docker stop command")
    page.click_row_action(name, "pause")
    wait_for(lambda: _state(api_client, name) == "paused", 30, "the container to pause")
    wait_for(lambda: "paused" in page.row(name).text, 20, "the list to show it paused")
    page.click_row_action(name, "unpause")
    wait_for(lambda: _state(api_client, name) == "running", 30, "the container to resume")
    wait_for(lambda: "running" in page.row(name).text, 20, "the list to show it running")
    page.click_row_action(name, "stop")
    wait_for(lambda: _state(api_client, name) == "exited", 30, "the container to stop")
    wait_for(lambda: "exited" in page.row(name).text, 20, "the list to show it exited")
    page.shot("07-stopped")
    page.click_row_action(name, "remove")
    page.confirm()
    wait_for(lambda: not page.has_row(name), 20, "the row to go")
    with pytest.raises(docker.errors.NotFound):
        api_client.inspect_container(name)
    page.shot("08-removed")


def test_pull_from_the_local_registry_with_progress(page: Page, api_client: docker.APIClient,
                                                    docker_cli: DockerCLI, registry: LocalRegistry,
                                                    tmp_path: Path) -> None:
    # an image with a layer of its own, pushed to the registry and removed here: the pull downloads
    repo = f"{registry.address}/{unique('dash-pull')}"
    ref = f"{repo}:1"
    layer = tmp_path / "layer.tar"
    layer.write_bytes(tiny_layer())
    try:
        docker_cli("import", str(layer), ref, check=True, timeout=120)
        docker_cli("push", ref, check=True, timeout=120)
        docker_cli("rmi", ref, check=True, timeout=60)

        page.go("#/images", "Images")
        page.fill("form[aria-label='Pull an image'] input[name=image]", ref)
        page.css("form[aria-label='Pull an image'] button[data-action='pull']").click()
        wait_for(lambda: page.css("#pull-status").text == f"pulled {ref}", 60, "the pull to finish")
        layers = page.d.find_elements(page.by.CSS_SELECTOR, "#pull-progress .layer")
        assert layers, "no per-layer progress shown"
        assert all(bar.get_attribute("value") == bar.get_attribute("max")
                   for bar in page.d.find_elements(page.by.CSS_SELECTOR, "#pull-progress progress"))
        assert "Pull complete" in page.css("#pull-progress").text
        wait_for(lambda: page.has_row(ref), 20, "the pulled image in the list")
        page.shot("09-images-pulled")
        assert ref in api_client.inspect_image(ref)["RepoTags"]
        # and removed again from its row
        page.click_row_action(ref, "remove")
        page.confirm()
        wait_for(lambda: not page.has_row(ref), 20, "the image row to go")
        with pytest.raises(docker.errors.ImageNotFound):
            api_client.inspect_image(ref)
    finally:
        remove_repository(api_client, repo)


def test_build_from_an_uploaded_dockerfile(page: Page, api_client: docker.APIClient, busybox_image: str,
                                           tmp_path: Path) -> None:
    tag = f"{unique('dash-build')}:1"
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM {busybox_image}\nRUN echo built-by-the-dashboard > /built\n")
    try:
        page.go("#/images", "Images")
        page.css("form[aria-label='Build an image'] input[type=file]").send_keys(str(dockerfile))
        page.fill("form[aria-label='Build an image'] input[name=tag]", tag)
        page.css("form[aria-label='Build an image'] button[data-action='build']").click()
        wait_for(lambda: f"Successfully tagged {tag}" in page.css("#build-log").text, 120, "the build log")
        assert "Step 2/2 : RUN echo built-by-the-dashboard" in page.css("#build-log").text
        wait_for(lambda: page.has_row(tag), 20, "the built image in the list")
        page.shot("09b-images-built")
        assert tag in api_client.inspect_image(tag)["RepoTags"]
    finally:
        try:
            api_client.remove_image(tag)
        except docker.errors.APIError:
            pass


def test_network_and_volume_create_and_remove(page: Page, api_client: docker.APIClient,
                                              tracker: ResourceTracker) -> None:
    net = tracker.network(unique("dash-net"))
    page.go("#/networks", "Networks")
    page.fill("form[aria-label='Create a network'] input[name=name]", net)
    page.css("form[aria-label='Create a network'] button[data-action='create']").click()
    wait_for(lambda: page.has_row(net), 20, "the new network in the list")
    assert api_client.inspect_network(net)["Name"] == net
    page.shot("10-networks")
    page.click_row_action(net, "remove")
    page.confirm()
    wait_for(lambda: not page.has_row(net), 20, "the network row to go")
    with pytest.raises(docker.errors.NotFound):
        api_client.inspect_network(net)

    vol = tracker.volume(unique("dash-vol"))
    page.go("#/volumes", "Volumes")
    page.fill("form[aria-label='Create a volume'] input[name=name]", vol)
    page.css("form[aria-label='Create a volume'] button[data-action='create']").click()
    wait_for(lambda: page.has_row(vol), 20, "the new volume in the list")
    assert api_client.inspect_volume(vol)["Name"] == vol
    page.shot("11-volumes")
    page.click_row_action(vol, "remove")
    page.confirm()
    wait_for(lambda: not page.has_row(vol), 20, "the volume row to go")
    with pytest.raises(docker.errors.NotFound):
        api_client.inspect_volume(vol)


def test_events_system_and_compat_pages(page: Page, api_client: docker.APIClient, tracker: ResourceTracker) -> None:
    before = tracker.volume(unique("dash-ev"))
    api_client.create_volume(before)
    page.go("#/events", "Events")
    wait_for(lambda: page.css("main .page-header .muted").text == "live", 20, "the events stream")
    wait_for(lambda: before in page.css("#events").text, 20, "an event from before the page opened")
    vol = tracker.volume(unique("dash-ev"))
    api_client.create_volume(vol)
    wait_for(lambda: vol in page.css("#events").text, 20, "the volume's create event, live")
    page.shot("12-events")
    page.go("#/system", "System")
    wait_for(lambda: "Disk usage" in page.css("figure.bars").text, 20, "the disk usage chart")
    page.shot("13-system")
    page.go("#/compat", "Compatibility")
    wait_for(lambda: page.d.find_elements(page.by.CSS_SELECTOR, "table.compat tbody tr"), 20, "the compat table")
    assert "docker run" in page.css("table.compat").text
    page.shot("14-compat")
