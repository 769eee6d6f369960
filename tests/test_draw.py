"""cnnzoo.draw: diagrams (asserted on the SVG's text and structure), the model page (driven in
headless Chromium), the CLI's one-line errors. Expected labels, shapes and receptive fields are
derived by hand in each test from the module's definition."""
from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import pytest
import torch
from torch import nn

from cnnzoo import create_model, profile
from cnnzoo.cli import main
from cnnzoo.draw import DrawError, draw
from cnnzoo.draw.page import write_page
from cnnzoo.models.resnet import BasicBlock

SVG = "{http://www.w3.org/2000/svg}"
BLUE, ORANGE = "#1f5fbf", "#d9730d"


class TinyInception(nn.Module):
    """Four branches on (8, 10, 10) -> concat: 4 + 6 + 3 + 2 = 15 channels."""

    def __init__(self, c: int = 8):
        super().__init__()
        self.b1 = nn.Conv2d(c, 4, 1)
        self.b2 = nn.Sequential(nn.Conv2d(c, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(c, 2, 1), nn.ReLU(), nn.Conv2d(2, 3, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c, 2, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


def parse(svg: str) -> tuple[dict[str, list[str]], dict[tuple[str, str], dict], list[str]]:
    """(node title -> its text lines, (tail, head) -> the edge path's attributes, cluster labels)."""
    root = ET.fromstring(svg)
    nodes, edges, clusters = {}, {}, []
    for g in root.iter(f"{SVG}g"):
        title = g.findtext(f"{SVG}title")
        texts = [t.text for t in g.iter(f"{SVG}text")]
        if g.get("class") == "node":
            nodes[title] = texts
        elif g.get("class") == "edge":
            tail, head = title.split("->")
            edges[(tail, head)] = g.find(f"{SVG}path").attrib
        elif g.get("class") == "cluster":
            clusters.append(texts[0])
    return nodes, edges, clusters


def meta(build):
    with torch.device("meta"):
        return build()


def test_profile_records_the_data_flow():
    # BasicBlock(4, 8, stride 2): conv1 -> bn1 -> relu -> conv2 -> bn2; x -> downsample (conv, bn); add; relu
    p = profile(meta(lambda: BasicBlock(4, 8, 2)), (4, 8, 8))
    names = [r.name + (f"#{r.call}" if r.call > 1 else "") for r in p.layers]
    edges = {(names[a] if a >= 0 else "x", names[b]) for a, b in p.edges}
    assert edges == {("x", "conv1"), ("conv1", "bn1"), ("bn1", "relu"), ("relu", "conv2"), ("conv2", "bn2"),
                     ("x", "downsample.0"), ("downsample.0", "downsample.1"), ("bn2", "add"),
                     ("downsample.1", "add"), ("add", "relu#2")}
    assert [names[i] for i in p.output_rows] == ["relu#2"]


def test_inception_like_module_is_drawn_as_four_branches_into_a_concat():
    svg = draw(meta(TinyInception), (8, 10, 10), show=("rf",)).svg()
    nodes, edges, _ = parse(svg)
    expected = {"b1": ["conv 1x1, 4", "10x10x4"], "b2.0": ["conv 1x1, 4", "ReLU", "10x10x4"],
                "b2.2": ["conv 3x3, 6", "10x10x6", "RF 3 /1 p1"],       # 1x1 then 3x3 pad 1: r = 1 + 2
                "b3.2": ["conv 5x5, 3", "10x10x3", "RF 5 /1 p2"],       # r = 1 + 4, P = 2
                "b4.0": ["max pool 3x3", "10x10x8"], "b4.1": ["conv 1x1, 2", "10x10x2"],
                "cat": ["concat", "10x10x15"]}                          # 4 + 6 + 3 + 2
    for name, lines in expected.items():
        assert all(line in nodes[name] for line in lines), (name, nodes[name])
    assert "b2.1" not in nodes and "b3.1" not in nodes  # the ReLUs sit in their conv's box
    assert set(edges) == {("(input)", "b1"), ("(input)", "b2.0"), ("(input)", "b3.0"), ("(input)", "b4.0"),
                          ("b2.0", "b2.2"), ("b3.0", "b3.2"), ("b4.0", "b4.1"), ("b1", "cat"), ("b2.2", "cat"),
                          ("b3.2", "cat"), ("b4.1", "cat"), ("cat", "(output)")}


def test_residual_blocks_draw_identity_and_projection_apart():
    nodes, edges, _ = parse(draw(meta(lambda: BasicBlock(4, 4)), (4, 8, 8)).svg())
    assert nodes["conv1"][:3] == ["conv 3x3, 4", "BN, ReLU", "8x8x4"]
    assert nodes["conv2"][:3] == ["conv 3x3, 4", "BN", "8x8x4"]
    assert nodes["add"][:3] == ["+", "ReLU", "8x8x4"]
    assert set(edges) == {("(input)", "conv1"), ("conv1", "conv2"), ("conv2", "add"), ("(input)", "add"),
                          ("add", "(output)")}
    assert edges[("(input)", "add")]["stroke"] == BLUE and "stroke-dasharray" not in edges[("(input)", "add")]
    assert edges[("conv2", "add")]["stroke"] != BLUE

    nodes, edges, _ = parse(draw(meta(lambda: BasicBlock(4, 8, 2)), (4, 8, 8)).svg())
    assert nodes["conv1"][:3] == ["conv 3x3, 8, /2", "BN, ReLU", "4x4x8"]          # (8 + 2 - 3) // 2 + 1 = 4
    assert nodes["downsample.0"][:3] == ["conv 1x1, 8, /2", "BN", "4x4x8"]
    for e in (("(input)", "downsample.0"), ("downsample.0", "add")):
        assert edges[e]["stroke"] == ORANGE and "stroke-dasharray" in edges[e]
    assert ("(input)", "add") not in edges


def test_block_depth_collapses_identical_blocks():
    def net():
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), *[BasicBlock(4, 4) for _ in range(3)],
                             BasicBlock(4, 8, 2), BasicBlock(8, 8))
    nodes, edges, clusters = parse(draw(meta(net), (3, 8, 8), "block").svg())
    assert sorted(clusters) == ["1 x 3", "4", "5"]
    assert "1.conv1" in nodes and "2.conv1" not in nodes and "3.conv1" not in nodes
    assert ("1/add", "4.conv1") in edges and ("1/add", "4.downsample.0") in edges   # the run's exit feeds block 4


def test_stage_depth_draws_one_box_per_stage():
    # CIFAR ResNet-20 (He et al. Sec. 4.2): 6n + 2 = 20 -> n = 3 basic blocks per stage, 16/32/64 filters, maps 32/16/8
    nodes, edges, _ = parse(draw(meta(lambda: create_model("cifar_resnet20")), (3, 32, 32), "stage").svg())
    for stage, (c, side) in {"layer1": (16, 32), "layer2": (32, 16), "layer3": (64, 8)}.items():
        assert nodes[stage][:3] == [stage, f"3 x BasicBlock [conv 3x3, {c}{', /2' if c > 16 else ''}; conv 3x3, {c}]",
                                    f"{side}x{side}x{c}"]
    assert ("layer1", "layer2") in edges and ("layer2", "layer3") in edges


def test_googlenet_aux_classifiers_are_side_exits_and_alexnet_has_two_towers():
    nodes, edges, _ = parse(draw(meta(lambda: create_model("googlenet_paper")), (3, 224, 224), "stage").svg())
    assert {"aux1", "aux2", "(output 2)", "(output 3)"} <= set(nodes)
    assert nodes["inception3a"][0] == "inception3a" and "28x28x256" in nodes["inception3a"]  # Table 1
    for e in (("inception4a", "aux1"), ("inception4d", "aux2"), ("aux1", "(output 2)")):
        assert "stroke-dasharray" in edges[e]
    assert ("inception4a", "inception4b") in edges and "stroke-dasharray" not in edges[("inception4a", "inception4b")]

    nodes, edges, _ = parse(draw(meta(lambda: create_model("alexnet_paper")), (3, 227, 227)).svg())
    # CONV2 (features.4, 256 filters, groups=2): 128 per tower, each reads its own tower only
    assert nodes["features.4@1"][0] == nodes["features.4@2"][0] == "conv 5x5, 128"
    assert ("features.3@1", "features.4@1") in edges and ("features.3@1", "features.4@2") not in edges
    # CONV3 (features.8, dense): reads both towers
    assert ("features.7@1", "features.8@2") in edges and ("features.7@2", "features.8@1") in edges


def test_draw_rejects_bad_options():
    with pytest.raises(DrawError, match="depth"):
        draw(nn.Conv2d(1, 1, 1), (1, 4, 4), "module")
    with pytest.raises(DrawError, match="show"):
        draw(nn.Conv2d(1, 1, 1), (1, 4, 4), show=("flops",))


@pytest.mark.parametrize("argv, words", [
    (["draw", "resnet999"], "unknown model"),
    (["draw", "alexnet_paper", "--input", "3x32x32"], "too small"),
    (["page", "resnet999", "--out", "."], "unknown model"),
])
def test_cli_errors_are_one_line_exit_2(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_cli_unwritable_output_is_one_line_exit_2(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["draw", "lenet5", "--out", str(blocker / "x.svg")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"cannot write {blocker / 'x.svg'}" in err


def test_cli_draws_a_file_model_in_each_format(tmp_path, capsys):
    src = tmp_path / "mine.py"
    src.write_text("from torch import nn\n"
                   "def make():\n    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2))\n")
    magic = {"svg": b"<?xml", "png": b"\x89PNG", "pdf": b"%PDF"}
    for fmt, head in magic.items():
        out = tmp_path / f"m.{fmt}"
        assert main(["draw", f"{src}:make", "--input", "3x10x10", "--out", str(out)]) == 0
        assert out.read_bytes().startswith(head)
    assert "conv 3x3, 4" in (tmp_path / "m.svg").read_text()


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (test extra)")
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("chromium / chromedriver are not installed (scripts/setup.sh installs them as root)")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=opts)


def test_page_receptive_field_viewer_shows_the_analyzers_figures(tmp_path):
    model = meta(TinyInception)
    path = write_page(model, tmp_path, (8, 10, 10))
    text = path.read_text()
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text  # nothing fetched
    prof = profile(model, (8, 10, 10))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    browser = _browser()
    try:
        browser.get(path.as_uri())
        rows = browser.find_elements(By.CSS_SELECTOR, "#layers tbody tr")
        assert len(rows) == len(prof.layers)
        # the diagram's title is text above it, whole within the pane (in the SVG it was cut off at the
        # left once the pane scrolled to the input box)
        caption, pane = browser.find_element(By.ID, "caption").rect, browser.find_element(By.ID, "diagram").rect
        assert browser.find_element(By.ID, "caption").text == f"TinyInception, input 8x10x10: {prof.totals.params:,} " \
            f"params, {prof.totals.macs:,} MACs (conv + linear)"
        assert pane["x"] <= caption["x"] and caption["x"] + caption["width"] <= pane["x"] + pane["width"]
        fig = lambda k: browser.find_element(By.ID, f"rf-{k}").text  # noqa: E731
        for name in ("b3.2", "b2.2", "b4.0"):
            i = [r.name for r in prof.layers].index(name)
            browser.find_element(By.CSS_SELECTOR, f'#layers tbody tr[data-i="{i}"]').click()
            rf = prof.layers[i].rf
            assert fig("layer") == name
            assert fig("size") == "x".join(str(int(v)) for v in rf.size)       # b3.2: 5x5 (1x1 then 5x5)
            assert fig("stride") == "x".join(str(int(v)) for v in rf.stride)
            assert fig("padding") == "x".join(str(int(v)) for v in rf.padding)
        assert (fig("size"), fig("padding")) == ("3x3", "1x1")   # b4.0: max pool 3x3 pad 1 on the input
        chosen = browser.find_elements(By.CSS_SELECTOR, "#diagram g.node.sel title")
        assert [t.get_attribute("textContent") for t in chosen] == ["b4.0"]   # the row's box is highlighted
        # a click on the diagram's box selects the same layer
        box = [n for n in browser.find_elements(By.CSS_SELECTOR, "#diagram g.node")
               if n.find_element(By.TAG_NAME, "title").get_attribute("textContent") == "b3.2"][0]
        box.find_element(By.TAG_NAME, "text").click()
        assert fig("layer") == "b3.2" and fig("size") == "5x5"
        # filter and sort
        browser.find_element(By.ID, "filter").send_keys("b3")
        assert browser.find_element(By.ID, "count").text == f"3 of {len(prof.layers)} rows"   # b3.0, b3.1, b3.2
        browser.find_element(By.ID, "filter").send_keys(Keys.BACKSPACE * 2)
        params = browser.find_element(By.XPATH, "//th[text()='params']")
        params.click()
        params.click()  # descending
        first = browser.find_element(By.CSS_SELECTOR, "#layers tbody tr td:nth-child(2)").text
        assert first == "b2.2"   # 4*6*3*3 + 6 = 222 params, the most (b3.2: 2*3*5*5 + 3 = 153)
    finally:
        browser.quit()


def test_lecture_figures_are_committed_with_the_analyzers_totals():
    from pathlib import Path

    from cnnzoo._text import short
    from cnnzoo.lecture import FIGURES, figures_for
    from cnnzoo.models.googlenet import Inception
    docs = Path(__file__).resolve().parents[1] / "docs"
    lecture_md = (docs / "lecture.md").read_text()
    for fig in FIGURES:
        assert (docs / "figures" / f"{fig.file}.svg").is_file(), "run `cnnzoo draw --lecture`"
        assert f"(figures/{fig.file}.svg)" in lecture_md and fig in figures_for(fig.section)
    # the naive module of the lecture's example (L20: 1x1 128, 3x3 192, 5x5 96, 3x3 pool on 28x28x256):
    # MACs = 28*28 * 256 * (128*1 + 192*9 + 96*25) = 854,196,224 (hand derivation; the lecture: 854M)
    macs = 28 * 28 * 256 * (128 * 1 + 192 * 9 + 96 * 25)
    naive = meta(lambda: Inception(256, 128, None, 192, None, 96, None, naive=True))
    assert profile(naive, (256, 28, 28)).totals.macs == macs
    assert f"{short(macs)} MACs" in (docs / "figures" / "inception_naive.svg").read_text()
