"""``cnnzoo lecture``: the committed document is current, every figure where cnnzoo rounds or
differs from the lecture is proven here by an independent derivation (hand arithmetic from the
papers' tables, torchvision), and the verdict follows the computed figure."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from cnnzoo import lecture
from cnnzoo.cli import main
from cnnzoo.lecture import AGREES, DIFFERS, ELSEWHERE, ROUNDING, Claim, Computed, Stated, judge

DOC = Path(__file__).resolve().parents[1] / "docs" / "lecture.md"


@pytest.fixture(scope="module")
def results():
    return {r.claim.id: r for r in lecture.evaluate()}


def _fig(results, cid):
    return results[cid].computed.value


# ------------------------------------------------------------------------------------ the document

def test_docs_lecture_md_is_current(results):
    # Regenerate with: cnnzoo lecture --format markdown > docs/lecture.md
    assert DOC.read_text() == lecture.render_markdown(list(results.values())), \
        "docs/lecture.md is stale: run `cnnzoo lecture --format markdown > docs/lecture.md`"


def test_every_claim_of_the_lecture_is_listed_and_the_required_ones_are_computed(results):
    ids = {cid.split(" ")[0] for cid in results}
    assert ids == {f"L{i}" for i in range(1, 33)}
    required = [4, 5, 6, 7, 8, 10, 13, 14, 15, 16, 18, 19, 20, 21, 22, 23, 26, 28, 29, 30]
    assert all(results[f"L{i}"].verdict in (AGREES, ROUNDING, DIFFERS) for i in required)
    # Experiments and history carry a pointer instead of a verdict.
    for cid in ("L1", "L9", "L27", "L31", "L32", "L17 (transfer)"):
        assert results[cid].verdict == ELSEWHERE and results[cid].computed is None and "`" in results[cid].reason


def test_cli_text_and_markdown(capsys):
    assert main(["lecture"]) == 0
    out = capsys.readouterr().out
    assert "L23" in out and "DIFFERS" in out and out.rstrip().splitlines()[-1].startswith("36 claims:")
    assert main(["lecture", "--format", "markdown"]) == 0
    assert capsys.readouterr().out == DOC.read_text()


def test_output_is_deterministic(results):
    text = lecture.render_text(list(results.values()))
    assert text == lecture.render_text(lecture.evaluate())
    for word in ("seconds", " ms", "cpu", "cuda", "2025", "2026"):
        assert word not in text.lower()


# ------------------------------------------------------- independent proofs where cnnzoo rounds/differs

def test_l5_conv1_params_by_hand(results):
    # AlexNet CONV1: 96 filters of 11x11x3 plus one bias each (paper Sec. 3.5 / Fig. 2).
    assert _fig(results, "L5") == 11 * 11 * 3 * 96 + 96 == 34_944
    assert results["L5"].verdict == ROUNDING and "34,848 weights + 96 biases" in results["L5"].reason


def test_l10_alexnet_params_by_hand(results):
    # Paper Fig. 2 with groups=2 on CONV2, CONV4, CONV5 (each GPU half sees half the maps).
    convs = [11 * 11 * 3 * 96 + 96, 5 * 5 * 48 * 256 + 256, 3 * 3 * 256 * 384 + 384,
             3 * 3 * 192 * 384 + 384, 3 * 3 * 192 * 256 + 256]
    fcs = [256 * 6 * 6 * 4096 + 4096, 4096 * 4096 + 4096, 4096 * 1000 + 1000]
    assert _fig(results, "L10") == sum(convs) + sum(fcs) == 60_965_224
    assert results["L10"].verdict == ROUNDING


def _vgg16_by_hand():
    # VGG paper Table 1, config D: (convs, channels) per stage at 224, 112, 56, 28, 14.
    stages = [(2, 64, 224), (2, 128, 112), (3, 256, 56), (3, 512, 28), (3, 512, 14)]
    conv_params, conv_out, pool_out, c_in = 0, 0, 0, 3
    for n, c, side in stages:
        for _ in range(n):
            conv_params += 9 * c_in * c + c
            conv_out += side * side * c
            c_in = c
        pool_out += (side // 2) ** 2 * c
    return conv_params, conv_out, pool_out


def test_l15_vgg16_params_by_hand_and_torchvision(results):
    conv, _, _ = _vgg16_by_hand()
    fc = 7 * 7 * 512 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    with torch.device("meta"):
        tv = sum(p.numel() for p in torchvision.models.vgg16().parameters())
    assert _fig(results, "L15") == conv + fc == tv == 138_357_544
    assert results["L15"].verdict == ROUNDING


def test_l16_vgg16_activations_by_hand(results):
    # The slide lists per layer: input 224*224*3, every conv output, every 2x2 pool output and the
    # FC outputs 4096, 4096, 1000; it sums them to "24M", but the terms add up to 15.24M.
    _, conv, pool = _vgg16_by_hand()
    inp, fc, avgpool = 224 * 224 * 3, 4096 + 4096 + 1000, 7 * 7 * 512
    assert inp + conv + pool + fc == 15_237_608
    # The analyzer: allocated outputs, no input, in-place ReLU and eval dropout add nothing, the
    # adaptive average pool (an identity at 224) allocates its 7x7x512 output.
    assert _fig(results, "L16") == conv + pool + avgpool + fc == 15_112_168
    # Every layer's output as its own tensor: conv and ReLU twice, avgpool + flatten, FC + ReLU + dropout.
    alts = results["L16"].computed.alternatives
    assert sorted(alts.values()) == [inp + conv + pool + fc,
                                     inp + 2 * conv + pool + 2 * avgpool + fc + 4 * 4096,
                                     2 * (conv + pool + avgpool + fc)]
    assert results["L16"].verdict == DIFFERS and "no counted convention gives 24M" in results["L16"].reason
    assert _fig(results, "L16 (bytes)") == 4 * 15_112_168  # float32
    assert results["L16 (bytes)"].verdict == DIFFERS


def _inception_params(c_in, c1, c3r, c3, c5r, c5, pp):
    # One Inception module of GoogLeNet Table 1, every conv with a bias.
    return (c_in * c1 + c1 + c_in * c3r + c3r + 9 * c3r * c3 + c3 + c_in * c5r + c5r + 25 * c5r * c5 + c5
            + c_in * pp + pp), c1 + c3 + c5 + pp


def test_l19_googlenet_params_by_hand_and_torchvision(results):
    # GoogLeNet paper Table 1 (inception rows 3a..5b), stem 7x7/2 64, 1x1 64, 3x3 192, FC 1024 -> 1000.
    table = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), (192, 96, 208, 16, 48, 64),
             (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
             (256, 160, 320, 32, 128, 128), (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]
    total, c = 7 * 7 * 3 * 64 + 64 + 64 * 64 + 64 + 9 * 64 * 192 + 192, 192
    for row in table:
        p, c = _inception_params(c, *row)
        total += p
    total += 1024 * 1000 + 1000
    assert _fig(results, "L19") == total == 6_998_552
    with torch.device("meta"):
        tv = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    assert results["L19"].computed.alternatives["torchvision's googlenet"] == sum(p.numel() for p in tv.parameters())
    assert results["L19"].verdict == DIFFERS


def test_l21_l23_inception_ops_by_hand(results):
    hw = 28 * 28
    naive = hw * (128 * 1 * 1 * 256 + 192 * 3 * 3 * 256 + 96 * 5 * 5 * 256)
    assert _fig(results, "L21") == naive == 854_196_224 and results["L21"].verdict == ROUNDING
    # The lecture's six bottleneck terms: 1x1 64, 1x1 64, 1x1 128 (on 256), 3x3 192 (on 64),
    # 5x5 96 (on 64), 1x1 64 after the pool (on 256).
    terms = [hw * 64 * 256, hw * 64 * 256, hw * 128 * 256, hw * 192 * 9 * 64, hw * 96 * 25 * 64, hw * 64 * 256]
    assert _fig(results, "L23") == sum(terms) == 271_351_808
    # 358M is these terms with the 3x3 conv's 86,704,128 added a second time.
    assert sum(terms) + terms[3] == 358_055_936
    r = results["L23"]
    assert r.verdict == DIFFERS and "3x3 conv 192 (on 64 maps) term counted twice gives 358,055,936" in r.reason
    assert _fig(results, "L23 (output)") == (128 + 192 + 96 + 64, 28, 28)


def test_l8_norm_order_follows_the_paper(results):
    # AlexNet Sec. 3.5: "Response-normalization layers follow the first and second convolutional
    # layers. Max-pooling layers ... follow both response-normalization layers".
    assert _fig(results, "L8 (norm)") == ("NORM", "MAXPOOL", "NORM", "MAXPOOL")
    assert results["L8 (norm)"].verdict == DIFFERS and "another order" in results["L8 (norm)"].reason


def test_agreeing_figures_match_hand_values(results):
    assert _fig(results, "L4") == (96, (227 - 11) // 4 + 1, (227 - 11) // 4 + 1)
    assert _fig(results, "L6") == (96, (55 - 3) // 2 + 1, (55 - 3) // 2 + 1)
    assert _fig(results, "L13") == (1 + 3 * 2, 7)
    assert _fig(results, "L14") == {"C=64": (27 * 64 ** 2, 49 * 64 ** 2), "C=256": (27 * 256 ** 2, 49 * 256 ** 2)}
    assert _fig(results, "L22") == (256, 256 + 416, 256 + 2 * 416)
    assert _fig(results, "L30") == (28 * 28 * (256 * 64 + 9 * 64 * 64 + 64 * 256), 28 * 28 * 2 * 9 * 256 * 256)
    assert {results[c].verdict for c in ("L4", "L6", "L7", "L8", "L13", "L14", "L18", "L20", "L22", "L26",
                                         "L28", "L29", "L30")} == {AGREES}


# ------------------------------------------------------------------------------- the verdict logic

def _c(value, **alternatives):
    return Computed(value, str(value), "test", [], alternatives)


def test_rounding_rule():
    stated = Stated("≈35K", 35_000, 1_000)
    assert judge(stated, _c(35_000))[0] == AGREES
    assert judge(stated, _c(34_944))[0] == ROUNDING
    assert judge(stated, _c(35_500))[0] == ROUNDING
    verdict, reason = judge(stated, _c(35_501))
    assert verdict == DIFFERS and "+1.4%" in reason
    assert "34,944 rounds to the lecture's 35K (nearest 1K)" in judge(stated, _c(34_944))[1]


def test_differs_names_the_convention_that_matches():
    stated = Stated("≈2M ops", 2e6, 1e6)
    verdict, reason = judge(stated, _c(1_000_000, **{"FLOPs (2 x MACs)": 2_000_000, "other": 7}))
    assert verdict == DIFFERS
    assert "the lecture's figure matches: FLOPs (2 x MACs) gives 2,000,000" in reason and "other" not in reason
    verdict, reason = judge(stated, _c(1_000_000, other=7))
    assert "no counted convention gives 2M: other: 7" in reason


def test_exact_and_qualitative_rules():
    assert judge(Stated("55x55x96", (96, 55, 55)), _c((96, 55, 55)))[0] == AGREES
    verdict, reason = judge(Stated("55x55x96", (96, 55, 55)), _c((96, 54, 54)))
    assert verdict == DIFFERS and "54" in reason
    verdict, reason = judge(Stated("a, b", ("a", "b")), _c(("b", "a")))
    assert verdict == DIFFERS and "another order" in reason
    grows = Stated("grows", holds=lambda v: v[1] > v[0])
    assert judge(grows, _c((1, 2)))[0] == AGREES
    assert judge(grows, _c((2, 2)))[0] == DIFFERS


def test_a_changed_computation_changes_the_verdict():
    claim = Claim("X", "test", "text", Stated("≈35K", 35_000, 1_000), lambda: _c(40_000))
    (r,) = lecture.evaluate([claim])
    assert r.verdict == DIFFERS and "40,000" in r.reason
    assert "1 claims: 0 agrees, 0 agrees up to rounding, 1 differs" in lecture.summary_line([r])
