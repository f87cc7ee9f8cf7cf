"""explainers.capture.row_sparse_linears: frozen Linears backpropagate only the non-zero rows of their
output gradient. The gradient must equal plain autograd's, the skipped rows must really be skipped
(a ViT's class token reaches one row of the last block's MLP), and anything it cannot vouch for
(overridden forward, a hook of the user's, trainable weights, other dtypes) must run as before."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

import explainers
from explainers import cam
from explainers.capture import preserved_state, row_sparse_linears
from tests.test_explainers_support import state_of
from tests.vit_support import VIT_SIZE, tiny_swin, tiny_vit

TOKENS, WIDTH, HIDDEN = 9, 6, 11


class TokenMlp(nn.Module):
    """Token-wise MLP over (B, T, D) whose score reads token 0 only, as a ViT head reads the class token."""

    def __init__(self, first: nn.Module | None = None) -> None:
        super().__init__()
        self.fc1 = first or nn.Linear(WIDTH, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        return (self.fc2(h)[:, 0] ** 2).sum()


def _gradient(model: nn.Module, x: torch.Tensor, sparse: bool, freeze: bool = True) -> torch.Tensor:
    x = x.detach().requires_grad_()
    with preserved_state(model, freeze=freeze), row_sparse_linears(model) if sparse else torch.enable_grad():
        return torch.autograd.grad(model(x), x)[0]


def _mm_rows(run) -> list[int]:
    """The row counts of the matrix products ``run()`` performs (first operand of aten::mm)."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        run()
    return sorted(e.input_shapes[0][0] for e in prof.events() if e.name == "aten::mm" and e.input_shapes)


def test_gradient_equals_autograd_and_skips_zero_rows() -> None:
    torch.manual_seed(0)
    model, x = TokenMlp(), torch.randn(2, TOKENS, WIDTH)
    dense, sparse = _gradient(model, x, False), _gradient(model, x, True)
    torch.testing.assert_close(sparse, dense, rtol=1e-6, atol=1e-7)
    assert sparse[:, 1:].abs().max() == 0 and sparse[:, 0].abs().min() > 0
    # Plain autograd multiplies all 2 x 9 token rows in each layer's backward; ours the 2 class-token rows.
    assert _mm_rows(lambda: _gradient(model, x, False)) == [2 * TOKENS, 2 * TOKENS]
    assert _mm_rows(lambda: _gradient(model, x, True)) == [2, 2]


def test_dense_gradients_take_the_usual_product_bit_for_bit() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(WIDTH, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, 3))
    x = torch.randn(4, WIDTH)
    wrapped = lambda z: model(z).sum()  # noqa: E731 - every output row gets a gradient
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    with preserved_state(model):
        dense = torch.autograd.grad(wrapped(x1), x1)[0]
        with row_sparse_linears(model):
            sparse = torch.autograd.grad(wrapped(x2), x2)[0]
    assert torch.equal(dense, sparse)


class Doubled(nn.Linear):
    """A Linear whose forward is not x W^T + b: routing it would lose the factor 2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(x)


def test_what_it_cannot_vouch_for_runs_as_before() -> None:
    torch.manual_seed(2)
    x = torch.randn(2, TOKENS, WIDTH)
    overridden = TokenMlp(Doubled(WIDTH, HIDDEN))
    torch.testing.assert_close(_gradient(overridden, x, True), _gradient(overridden, x, False), rtol=1e-6, atol=1e-7)
    assert _mm_rows(lambda: _gradient(overridden, x, True)) == [2, 2 * TOKENS]  # fc2 routed, Doubled not

    hooked = TokenMlp()
    handle = hooked.fc2.register_forward_hook(lambda _m, _i, out: 3 * out)  # the user's hook changes the output
    try:
        torch.testing.assert_close(_gradient(hooked, x, True), _gradient(hooked, x, False), rtol=1e-6, atol=1e-7)
        assert _mm_rows(lambda: _gradient(hooked, x, True)) == [2, 2 * TOKENS]
    finally:
        handle.remove()

    tripled = TokenMlp()
    handle = nn.modules.module.register_module_forward_hook(
        lambda m, _i, out: 3 * out if isinstance(m, nn.Linear) else None)  # a global hook of the user's
    try:
        torch.testing.assert_close(_gradient(tripled, x, True), _gradient(tripled, x, False), rtol=1e-6, atol=1e-7)
        assert _mm_rows(lambda: _gradient(tripled, x, True)) == [2 * TOKENS, 2 * TOKENS]
    finally:
        handle.remove()

    trainable = TokenMlp()  # weights not frozen: their gradients are autograd's business
    assert _mm_rows(lambda: _gradient(trainable, x, True, freeze=False)).count(2 * TOKENS) >= 2

    mixed = TokenMlp()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bfloat16 outputs of float32 weights: not routed
        assert _mm_rows(lambda: _gradient(mixed, x, True)) == [2 * TOKENS, 2 * TOKENS]


def test_in_place_ops_after_a_routed_linear_still_work() -> None:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(WIDTH, HIDDEN), nn.ReLU(inplace=True), nn.Linear(HIDDEN, 1))
    x = torch.randn(5, WIDTH)
    score = lambda z: model(z)[0].sum()  # noqa: E731 - one item of five
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    with preserved_state(model):
        dense = torch.autograd.grad(score(x1), x1)[0]
        with row_sparse_linears(model):
            sparse = torch.autograd.grad(score(x2), x2)[0]
    torch.testing.assert_close(sparse, dense, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make, layer, size", [
    (tiny_vit, "encoder.layers.encoder_layer_2.ln_1", (VIT_SIZE, VIT_SIZE)),
    (tiny_swin, "features.3.1.norm1", (48, 64)),
])
def test_layer_pass_gradients_match_plain_autograd(make, layer: str, size: tuple[int, int], monkeypatch) -> None:
    """The CAM pass (which routes its Linears) gives the layer and input gradients plain autograd gives."""
    model = make()
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(4))
    before = state_of(model)
    routed = cam.layer_pass(model, x, layer, [None, 3], input_gradients=True)
    assert state_of(model) == before
    monkeypatch.setattr(cam, "row_sparse_linears", lambda _model: torch.enable_grad())
    plain = cam.layer_pass(model, x, layer, [None, 3], input_gradients=True)
    for i in range(2):
        torch.testing.assert_close(routed.gradients[i], plain.gradients[i], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(routed.input_gradients[i], plain.input_gradients[i], rtol=1e-5, atol=1e-7)
        assert routed.gradients[i].abs().max() > 0


def test_failure_inside_the_block_removes_its_hooks() -> None:
    model = TokenMlp()
    before = state_of(model)
    with pytest.raises(RuntimeError, match="boom"):
        with row_sparse_linears(model):
            raise RuntimeError("boom")
    assert state_of(model) == before
    with pytest.raises(RuntimeError):  # wrong width: the model itself raises inside the block
        _gradient(model, torch.randn(2, TOKENS, WIDTH + 1), True)
    assert state_of(model) == before


def test_explain_on_a_vit_routes_the_last_block_and_leaves_no_hooks() -> None:
    """Grad-CAM on a ViT: the last block's MLP backward multiplies the class-token rows only."""
    model = tiny_vit()
    x = torch.randn(2, 3, VIT_SIZE, VIT_SIZE, generator=torch.Generator().manual_seed(5))
    before = state_of(model)
    rows = _mm_rows(lambda: explainers.explain(model, x, "grad_cam", layer="encoder.layers.encoder_layer_2.ln_1"))
    assert rows.count(2) >= 2, rows  # fc2 and fc1 of the last block: 2 items' class tokens of 2 x 37 rows
    assert state_of(model) == before
