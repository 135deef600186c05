"""`rig view` pages in a real headless browser: Chromium from the system's packages (scripts/browser.sh installs it),
driven by Playwright, opened from the file system as a user opens them. Nothing is downloaded.

Without Chromium these tests fail, saying how to install it; RIG_NO_BROWSER=1 skips them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from cli_helpers import rig

CHROMIUM = os.environ.get("RIG_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
pytestmark = pytest.mark.skipif(os.environ.get("RIG_NO_BROWSER") == "1",
                                reason="RIG_NO_BROWSER=1: the browser tests of rig view are off")
XSS = '<img src=x onerror="window.__pwned=1"></script><script>window.__pwned=1</script><!-- & \u2028'


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: run bash scripts/browser.sh (or set RIG_NO_BROWSER=1 to skip "
                    "the browser tests)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: pip install -c constraints.txt -e '.[dev]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A browser page that records console errors, page errors and every URL it asked for."""

    def __init__(self, browser, site: Path):
        self.ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        self.ctx.set_default_timeout(10_000)
        self.p = self.ctx.new_page()
        self.site = site
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.p.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.p.on("pageerror", lambda e: self.errors.append(str(e)))
        self.p.on("request", lambda r: self.urls.append(r.url))

    def open(self, fragment: str = "") -> "Page":
        self.p.goto(f"file://{self.site}/index.html#{fragment}")
        self.p.wait_for_selector("h1")
        return self

    def images_loaded(self) -> None:
        """Every image shown has loaded (complete, natural width > 0); there is at least one."""
        self.p.wait_for_function("() => [...document.images].filter(i => !i.hidden && i.offsetParent)"
                                 ".every(i => i.complete)")
        shown = self.p.evaluate("() => [...document.images].filter(i => !i.hidden && i.offsetParent)"
                                ".map(i => [i.getAttribute('src'), i.naturalWidth])")
        assert shown and all(w > 0 for _, w in shown), shown

    def clean(self) -> None:
        assert self.errors == []
        assert all(u.startswith("file://") for u in self.urls), [u for u in self.urls if not u.startswith("file://")]


@pytest.fixture
def page(browser):
    pages = []

    def make(site: Path) -> Page:
        pages.append(Page(browser, site))
        return pages[-1]

    yield make
    for p in pages:
        p.ctx.close()


def view_site(path: Path, out: Path) -> Path:
    r = rig("view", path, "--out", out, "--quiet")
    assert r.exit_code == 0, r.output
    return out


def test_an_evaluation_page_shows_success_comparison_and_plots(view_players_eval, tmp_path, page):
    pg = page(view_site(view_players_eval, tmp_path / "site")).open()
    assert pg.p.locator("#success tbody tr").count() >= 2  # the task, all tasks
    assert "expert" in pg.p.inner_text("#success thead") and "random" in pg.p.inner_text("#success thead")
    assert pg.p.locator("#compare tr").count() == 2 and "paired" in pg.p.inner_text("#compare")
    assert pg.p.locator(".plots img").count() >= 3  # players.png, each player's success and scaling plots
    pg.images_loaded()
    pg.clean()


def test_the_filter_shows_only_failed_episodes(view_players_eval, tmp_path, page):
    episodes = [e for d in ("expert", "random")
                for e in json.loads((view_players_eval / d / "eval.json").read_text())["sweep"][0]["episodes"]]
    failed = sum(not e["success"] for e in episodes)
    assert 0 < failed < len(episodes)
    pg = page(view_site(view_players_eval, tmp_path / "site")).open()
    rows = pg.p.locator("tr.episode-row")
    assert rows.count() == len(episodes)
    pg.p.select_option("#filter-outcome", "failed")
    assert rows.count() == failed
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.success)")) == {"0"}
    pg.p.select_option("#filter-outcome", "succeeded")
    assert rows.count() == len(episodes) - failed
    pg.p.select_option("#filter-player", "random")
    assert set(rows.evaluate_all("rs => rs.map(r => r.cells[1].textContent)")) <= {"random"}
    pg.p.reload()  # the filters are kept in the address
    assert pg.p.input_value("#filter-player") == "random"
    pg.clean()


def _step_that_changes(dataset: Path) -> tuple[int, int, list[str]]:
    """An episode and a step whose next step has another thought and another frame."""
    from rig_core.data.reader import Dataset

    with Dataset(dataset) as ds:
        for number, ep in enumerate(ds):
            texts, frames = ep.texts("reasoning"), ep["frames"][()]
            for t in range(ep.length - 1):
                if texts[t] != texts[t + 1] and not np.array_equal(frames[t], frames[t + 1]):
                    return number, t, texts
    raise AssertionError("no step changes both thought and frame")


def test_the_right_arrow_moves_to_the_next_step(reasoned_dataset, tmp_path, page):
    number, t, texts = _step_that_changes(reasoned_dataset)
    pg = page(view_site(reasoned_dataset, tmp_path / "site")).open(f"ep={number}&t={t}")
    pg.p.wait_for_selector("#thought")
    assert pg.p.inner_text("#thought") == texts[t] and pg.p.input_value("#slider") == str(t)
    frame = pg.p.eval_on_selector(".frame img", "i => [i.getAttribute('src'), i.style.left, i.style.top]")
    pg.images_loaded()
    pg.p.keyboard.press("ArrowRight")
    pg.p.wait_for_function(f"() => document.getElementById('slider').value === '{t + 1}'")
    pg.p.wait_for_function("t => document.getElementById('thought').textContent === t", arg=texts[t + 1])
    assert pg.p.eval_on_selector(".frame img", "i => [i.getAttribute('src'), i.style.left, i.style.top]") != frame
    assert pg.p.inner_text("#steplabel").startswith(f"step {t + 1} /")
    pg.p.keyboard.press("ArrowLeft")
    pg.p.wait_for_function("t => document.getElementById('thought').textContent === t", arg=texts[t])
    pg.images_loaded()
    pg.clean()


def test_play_pause_and_speed(reasoned_dataset, tmp_path, page):
    pg = page(view_site(reasoned_dataset, tmp_path / "site")).open("ep=0&t=0")
    pg.p.wait_for_selector("#thought")
    pg.p.select_option("#speed", "16")
    pg.p.click("#play")
    pg.p.wait_for_function("() => Number(document.getElementById('slider').value) >= 3")
    pg.p.click("#play")  # pause
    assert pg.p.inner_text("#play") == "play"
    stopped = pg.p.input_value("#slider")
    pg.p.wait_for_timeout(300)
    assert pg.p.input_value("#slider") == stopped
    pg.clean()


def test_a_long_episode_loads_only_the_chunks_it_shows(random_dataset, tmp_path, page, monkeypatch):
    import rig_core.view.site as site
    from rig_core.data.reader import Dataset

    with Dataset(random_dataset) as ds:
        number, length = max(enumerate(ep.length for ep in ds), key=lambda x: x[1])
    monkeypatch.setattr(site, "CHUNK", 4)  # episodes of up to 40 steps in up to 10 chunks, as a 1,000-step game
    assert length >= 16
    pg = page(view_site(random_dataset, tmp_path / "site")).open(f"ep={number}&t=0")
    pg.p.wait_for_selector("#info tr")
    loaded = lambda: pg.p.evaluate("() => [...document.querySelectorAll('script[src^=\"ep/\"]')]"
                                   ".map(s => s.getAttribute('src'))")
    assert sorted(loaded()) == [f"ep/{number}/0.js", f"ep/{number}/1.js"]  # the step's chunk and the next
    pg.p.keyboard.press("End")
    pg.p.wait_for_function(f"() => document.getElementById('slider').value === '{length}'")
    assert len(loaded()) <= 4
    for _ in range(6):  # back across a chunk boundary, step by step
        pg.p.keyboard.press("ArrowLeft")
    pg.p.wait_for_function(f"() => document.getElementById('slider').value === '{length - 6}'")
    assert len(loaded()) <= 5 < -(-length // 4)  # the chunks around the steps shown, not the episode's
    pg.images_loaded()
    pg.clean()


def _with_html_in_it(random_dataset: Path, out: Path) -> Path:
    """A reasoned dataset whose thought, task and instruction hold markup and a script."""
    r = rig("augment", "--stage", "reason", "--data", random_dataset, "--out", out, "--quiet")
    assert r.exit_code == 0, r.output
    with h5py.File(sorted(out.glob("shard-*.h5"))[0], "r+") as f:
        g = f["episodes"][sorted(f["episodes"])[0]]
        texts = [XSS + f" step {t}" for t in range(int(g.attrs["length"]))]
        del g["reasoning"]
        g.create_dataset("reasoning", data=texts, dtype=h5py.string_dtype("utf-8"))
        g.attrs["instruction"] = "<b>bold</b><script>window.__pwned=2</script>"
        g.attrs["task"] = '<img src=y onerror="window.__pwned=3">'
    return out


def test_markup_in_the_data_shows_as_text_and_runs_nothing(random_dataset, tmp_path, page):
    data = _with_html_in_it(random_dataset, tmp_path / "xss")
    pg = page(view_site(data, tmp_path / "site")).open()
    assert '<img src=y onerror="window.__pwned=3">' in pg.p.inner_text("#episodes")
    pg.open("ep=0&t=1")
    pg.p.wait_for_selector("#thought")
    assert pg.p.inner_text("#thought") == XSS + " step 1"
    assert "<b>bold</b><script>window.__pwned=2</script>" in pg.p.inner_text("main")
    pg.p.keyboard.press("ArrowRight")
    pg.p.wait_for_function("() => document.getElementById('thought').textContent.endsWith('step 2')")
    assert pg.p.evaluate("() => window.__pwned") is None
    assert pg.p.locator("main img[src='x'], main img[src='y'], main script").count() == 0
    assert not pg.p.evaluate("() => [...document.querySelectorAll('main b')].some(b => b.textContent === 'bold')")
    assert [u for u in pg.urls if u.endswith("/x") or u.endswith("/y")] == []
    pg.clean()


def test_imagined_frames_and_the_lookahead_review(view_policy_eval, view_lookahead_eval, tmp_path, page):
    pg = page(view_site(view_policy_eval, tmp_path / "policy")).open()
    index = json.loads((tmp_path / "policy" / "data" / "index.js").read_text()[len("window.RIG_VIEW="):-2])
    first = next(e for e in index["episodes"] if e["recorded"])
    pg.open(f"ep={first['id']}&t=0")
    pg.p.wait_for_selector("#imagined figure")
    assert "PSNR" in pg.p.inner_text("#imagined")
    pg.images_loaded()
    pg.clean()
    pg = page(view_site(view_lookahead_eval, tmp_path / "look")).open()
    index = json.loads((tmp_path / "look" / "data" / "index.js").read_text()[len("window.RIG_VIEW="):-2])
    ahead = next(e for e in index["episodes"] if e["n"] == 1)
    pg.open(f"ep={ahead['id']}&t=0")
    pg.p.wait_for_selector("#proposal")
    assert "proposed" in pg.p.inner_text("#proposal") and pg.p.locator("#proposal .chain tr").count() == 3
    pg.images_loaded()
    pg.clean()


def test_review_data_shows_verdict_reason_and_correction(review_dataset, tmp_path, page):
    pg = page(view_site(review_dataset, tmp_path / "site")).open("ep=0&t=0")
    pg.p.wait_for_selector("#proposal")
    text = pg.p.inner_text("#proposal")
    assert "review data" in text and "verdict and reason" in text and "corrected" in text
    assert pg.p.locator("#proposal .tag").count() == 2  # horizon 2: a verdict per look-ahead depth
    pg.images_loaded()
    pg.clean()


def test_scored_candidates_are_listed(view_policy_eval, tmp_path, page):
    folder = tmp_path / "eval"
    shutil.copytree(view_policy_eval, folder)
    with h5py.File(sorted((folder / "steps").glob("shard-*.h5"))[0], "r+") as f:
        g = f["episodes"][sorted(f["episodes"])[0]]
        t = int(g.attrs["length"])
        g["candidates/actions"] = np.tile(np.array([[1, 3, -1]], np.int16), (t, 1))
        g["candidates/scores"] = np.tile(np.array([[0.75, 0.25, 0.0]], np.float32), (t, 1))
    pg = page(view_site(folder, tmp_path / "site")).open("ep=0&t=0")
    pg.p.wait_for_selector("#candidates")
    rows = pg.p.locator("#candidates tr")
    assert rows.count() == 3 and "0.750" in rows.nth(1).inner_text() and "0.250" in rows.nth(2).inner_text()
    pg.clean()


def test_a_pipeline_page_links_each_stage(random_dataset, tmp_path, page):
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "data").symlink_to(random_dataset)
    (pipe / "pipeline.json").write_text(json.dumps({"format": "rig-pipeline", "version": 1, "stages": {
        "data": {"run": "collect", "status": "complete", "wall_s": 2.0}}}))
    pg = page(view_site(pipe, tmp_path / "site")).open()
    pg.p.click("#stages a")
    pg.p.wait_for_selector("#episodes")
    assert pg.p.url.endswith("/data/index.html") and "pipeline pipe" in pg.p.inner_text("nav")
    pg.clean()
