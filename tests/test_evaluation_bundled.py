"""evaluation on the bundled EfficientNet-Lite0 and text CNN: Grad-CAM beats a random map, the
randomisation check leaves the loaded model bit for bit, token curves start at the model's own score."""

import numpy as np
import pytest
import torch

import evaluation
import explainers
import models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lite0():
    return models.load_image_model()


@pytest.mark.parametrize("sample", ["cat", "coffee"])
def test_grad_cam_deletion_beats_a_random_map(lite0, sample):
    x = lite0.preprocess(models.load_sample(sample))
    heat = explainers.explain(lite0.net, x, "grad_cam").maps[0]
    score = evaluation.score_map(lite0.net, x, heat, steps=8, random_maps=2)
    assert score.deletion_auc < score.random_deletion_auc
    assert score.insertion_auc > score.random_insertion_auc and not score.no_better_than_random
    with torch.no_grad():
        assert score.deletion[0] == pytest.approx(lite0.net(x).softmax(-1).max().item(), rel=1e-4)


def test_randomisation_restores_the_loaded_model_bit_for_bit(lite0):
    x = lite0.preprocess(models.load_sample("coffee"))
    before = {k: v.clone() for k, v in lite0.net.state_dict().items()}
    flags = [p.requires_grad for p in lite0.net.parameters()]
    cascade = evaluation.randomisation_cascade(lite0.net, x, ["grad_cam"], depth=2, seed=0)
    assert cascade.depth_labels == ["_fc", "_conv_head + _bn1"]
    assert all(torch.equal(before[k], v) for k, v in lite0.net.state_dict().items())
    assert not lite0.net.training and [p.requires_grad for p in lite0.net.parameters()] == flags
    after = explainers.explain(lite0.net, x, "grad_cam", cascade.target).maps[0].numpy()
    np.testing.assert_array_equal(after, cascade.original["grad_cam"])


def test_token_curves_on_the_text_cnn():
    model = models.load_text_model("textcnn-sentiment")
    prepared = explainers.prepare_text(model.net, model.tokenizer, "a gorgeous, witty and deeply moving film")
    attribution = explainers.explain_text(model.net, model.tokenizer, prepared, "grad_x_input")
    score = evaluation.score_tokens(model.net, model.tokenizer, prepared, {"gxi": attribution.scores},
                                    attribution.target)["gxi"]
    probability = prepared.logits.softmax(-1)[0, attribution.target].item()
    assert score.deletion[0] == pytest.approx(probability, rel=1e-5)
    assert score.insertion[-1] == pytest.approx(probability, rel=1e-5)
    assert len(score.fractions) == sum(not s for s in prepared.special) + 1
    assert np.isfinite([score.deletion_auc, score.insertion_auc, score.random_deletion_auc]).all()
