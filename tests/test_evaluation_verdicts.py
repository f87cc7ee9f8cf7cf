"""Verdicts with known answers: the exact attribution of a linear model beats random, a random map
does not, blank maps and ~0-probability classes get no verdict, an edge detector fails the sanity check."""

import numpy as np
import pytest
import torch
from torch import nn

import explainers
from evaluation import control_maps, random_maps, sanity_check, score_maps, score_methods
from evaluation.controls import CENTRE, SOBEL, centre_map, sobel_map
from evaluation.verdict import DELETION, INSERTION, against_floor


class Linear(nn.Module):
    """logit_c = sum W[c] * x + b_c: the exact attribution of class c is W[c] * x (summed over channels)."""

    def __init__(self, classes=3, size=12, seed=7):  # not 0: re-initialising with seed 0 would redraw these weights
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(classes, 3, size, size, generator=g) * 0.3)
        self.bias = nn.Parameter(torch.zeros(classes))

    def forward(self, x):
        return torch.einsum("bchw,kchw->bk", x, self.weight) + self.bias


@pytest.fixture
def linear():
    torch.manual_seed(0)
    model = Linear()
    x = torch.randn(1, 3, 12, 12)
    with torch.no_grad():  # class 1 is the one the model believes in (p ~ 0.9)
        logits = model(x)[0]
        model.bias[1] = float(logits[[0, 2]].max() - logits[1]) + 3.0
    return model, x


def exact(model, x, c):
    return (model.weight[c] * x[0]).sum(0).detach()


def test_the_exact_attribution_beats_random_and_the_controls(linear):
    model, x = linear
    maps = {"exact": exact(model, x, 1), **control_maps(x)}
    found = score_maps(model, x, maps, 1, steps=12, replacement="zero", insertion_start="zero", score="logit")
    best = found["exact"]  # provably the best order for the logit of a linear model
    assert best.verdicts["deletion"].outcome == "beats random" and best.verdicts["insertion"].outcome == "beats random"
    for control in (SOBEL, CENTRE):
        assert best.deletion_auc < found[control].deletion_auc and best.insertion_auc > found[control].insertion_auc
    assert best.floor.count == 20
    text = best.verdicts["deletion"].text
    assert text.startswith("Deletion: beats random. ") and "lower than 95% of 20 random maps" in text


def test_maps_drawn_like_the_random_ones_are_no_better_than_random(linear):
    model, x = linear
    floor = random_maps(20, (12, 12), (3, 3), seed=0)  # the floor the call below draws
    others = random_maps(40, (12, 12), (3, 3), seed=99)
    maps = {"copy of a floor map": floor[7], **{f"random {i}": m for i, m in enumerate(others)}}
    found = score_maps(model, x, maps, 1, steps=12, grids=dict.fromkeys(maps, (3, 3)))
    assert found["copy of a floor map"].floor.deletion_auc[7] == pytest.approx(found["copy of a floor map"].deletion_auc)
    for metric in ("deletion", "insertion"):
        assert found["copy of a floor map"].verdicts[metric].outcome == "no better than random"
        beats = sum(s.verdicts[metric].outcome == "beats random" for name, s in found.items() if name.startswith("random"))
        assert beats <= 8  # about 5% of 40 expected by chance; far from most of them
        assert all(s.verdicts[metric].given for s in found.values())


def test_blank_maps_tiny_classes_and_evidence_against_get_no_verdict(linear):
    model, x = linear
    ok = exact(model, x, 1)
    found = score_maps(model, x, {"zero": torch.zeros(12, 12), "flat": torch.full((12, 12), 3.0), "against": -ok},
                       1, steps=6, evidence_against={"against"})
    for name, words in (("zero", "zero everywhere"), ("flat", "same value everywhere"), ("against", "evidence against")):
        for verdict in found[name].verdicts.values():
            assert not verdict.given and words in verdict.reason and verdict.text.startswith(verdict.metric + ": no verdict.")
    with torch.no_grad():
        model.bias[2] = -60.0  # class 2: probability ~ 1e-28
    tiny = score_maps(model, x, {"exact": exact(model, x, 2)}, 2, steps=6)["exact"]
    assert tiny.probability < 1e-6
    assert not tiny.verdicts["deletion"].given and "probability" in tiny.verdicts["deletion"].reason


def test_against_floor_reads_the_right_percentile_and_direction():
    floor = np.arange(100, dtype=float)  # 5th percentile 4.95, 95th 94.05
    assert against_floor(DELETION, 4.9, floor).outcome == "beats random"
    assert against_floor(DELETION, 5.0, floor).outcome == "no better than random"
    assert against_floor(INSERTION, 94.1, floor).outcome == "beats random"
    assert against_floor(INSERTION, 94.0, floor).outcome == "no better than random"
    assert not against_floor(INSERTION, 1.0, np.array([])).given


def test_controls_by_hand():
    x = torch.zeros(1, 3, 5, 6)
    x[..., 3:] = 1.0  # a vertical edge between columns 2 and 3
    edges = sobel_map(x)
    assert edges[:, :2].abs().max() == 0 and edges[:, 4:].abs().max() == 0
    # |Gx| = 1 + 2 + 1 = 4, Gy = 0: the record's scaling sqrt(((Gx / 4)^2 + (Gy / 4)^2) / 2) = 1 / sqrt(2)
    assert edges[2, 2] == pytest.approx(2**-0.5) and edges[2, 3] == pytest.approx(2**-0.5)
    pooled = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())  # any model: the control ignores it
    assert torch.allclose(edges, explainers.explain(pooled, x, "sobel", 0).maps[0].double())  # the record's map
    centre = centre_map((5, 6))
    assert centre.argmax() // 6 == 2 and centre[2, 2] == centre[2, 3] and centre.max() < 1
    grid = random_maps(2, (8, 8), (2, 2), seed=1)
    assert grid.shape == (2, 8, 8) and torch.equal(grid, random_maps(2, (8, 8), (2, 2), seed=1))
    assert grid[0, 0, 0] == grid[0, 1, 1]  # bilinear upsampling keeps the corner cells flat (half-pixel centres)


def test_an_edge_detector_fails_the_sanity_check_and_a_weight_map_passes(linear):
    model, x = linear
    found = sanity_check(model, x, ["saliency"], 1, functions={"edges": lambda _m, image, _t: sobel_map(image)})
    assert found["edges"].verdict.outcome == "fails" and found["edges"].rho == pytest.approx(1.0)
    assert found["edges"].floor == pytest.approx(1.0)
    assert "shaped by the image and the method itself" in found["edges"].verdict.reason
    assert found["saliency"].verdict.outcome == "passes" and found["saliency"].rho < 0.3
    assert "depends on what the model learned" in found["saliency"].verdict.reason


def test_score_methods_scores_names_with_the_controls_and_road(linear):
    model, x = linear
    scored = score_methods(model, x, ["saliency", "input_x_gradient"], 1, faithfulness_options={"steps": 6},
                           road_options={"random_maps": 3})
    assert list(scored.faithfulness) == ["saliency", "input_x_gradient", SOBEL, CENTRE] == list(scored.road)
    assert scored.grids["saliency"] is None and scored.road["saliency"].floor.count == 3
    assert scored.faithfulness["input_x_gradient"].verdicts["deletion"].given


def test_score_caption_gives_every_verdict_in_full_words(linear):
    from ui.evaluation_results import score_caption

    model, x = linear
    found = score_maps(model, x, {"exact": exact(model, x, 1), "zero": torch.zeros(12, 12)}, 1, steps=6, score="logit")
    good, blank = score_caption(found["exact"]), score_caption(found["zero"])
    for verdict in found["exact"].verdicts.values():
        assert f"{verdict.metric}: {verdict.outcome}]" in good and verdict.reason in good
    assert ":grey-badge[Deletion: no verdict]" in blank and ":grey-badge[Insertion: no verdict]" in blank
    assert "This map is zero everywhere, so it ranks no pixel above another." in blank
    assert "random maps' median" in good and "beats random" not in blank
