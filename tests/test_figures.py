"""figures/: pure Plotly builders and exports, tested as functions (no browser)."""

import io
import json
import re

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from explainers.errors import ExplainerError
from figures import evaluation, export, image, scales, text
from figures.scales import Scale, scale_for

RNG = np.random.default_rng(0)
IMG = (RNG.random((30, 40, 3)) * 255).astype(np.uint8)


def heatmaps(fig: go.Figure) -> list[go.Heatmap]:
    return [t for t in fig.data if t.type == "heatmap"]


# ---------------------------------------------------------------- scales


def test_signed_scale_is_centred_on_zero_and_uses_the_largest_magnitude():
    (s,) = scale_for([np.array([[-3.0, 1.0], [0.5, 2.0]])])
    assert s.signed and s.zmin == -3.0 and s.zmax == 3.0
    assert s.colorscale == scales.DIVERGING


def test_non_negative_scale_is_anchored_at_zero():
    (s,) = scale_for([np.array([2.0, 5.0])])
    assert (s.zmin, s.zmax, s.signed, s.colorscale) == (0.0, 5.0, False, scales.SEQUENTIAL)


def test_signed_mode_forces_a_diverging_scale_on_non_negative_maps():
    (s,) = scale_for([np.array([0.0, 4.0])], mode="signed")
    assert s.signed and (s.zmin, s.zmax) == (-4.0, 4.0)


def test_per_map_scales_differ_and_shared_scale_is_one_object_over_all_values():
    a, b = np.array([0.0, 1.0]), np.array([0.0, 10.0])
    per = scale_for([a, b], "per_map")
    assert per[0].zmax == 1.0 and per[1].zmax == 10.0
    shared = scale_for([a, None, b], "shared")
    assert shared[1] is None and shared[0] is shared[2] and shared[0].zmax == 10.0


def test_shared_scale_with_groups_shares_only_within_a_group():
    """Maps in different units (groups, e.g. families) never share a range: a saliency-like 0..0.4 map keeps
    its own scale beside a CAM-like 0..19 one, while two maps of one group share one object."""
    cam_a, cam_b, grad = np.array([0.0, 19.0]), np.array([0.0, 3.0]), np.array([0.0, 0.4])
    found = scale_for([cam_a, grad, cam_b, None], "shared", groups=["cam", "gradient", "cam", "gradient"])
    assert found[0] is found[2] and found[0].zmax == 19.0 and found[3] is None
    assert found[1] is not found[0] and found[1].zmax == pytest.approx(0.4)
    one = scale_for([cam_a, grad], "shared")
    assert one[0] is one[1] and one[1].zmax == 19.0  # without groups: one scale for all, as before
    with pytest.raises(ExplainerError, match="groups"):
        scale_for([cam_a, grad], "shared", groups=["cam"])


def test_token_rows_of_two_families_get_one_colour_bar_per_family():
    rows = [text.TokenRow(name, ["a", "b"], np.array(values)) for name, values in
            (("IG", [0.0, 0.5]), ("Saliency", [0.0, 0.2]), ("Occlusion", [0.0, 7.0]))]
    fig = text.token_heatmap_rows(rows, shared=True, groups=["gradient", "gradient", "perturbation"])
    axes = {k: v for k, v in fig.to_dict()["layout"].items() if k.startswith("coloraxis")}
    assert len(axes) == 2  # the two gradient rows share one, the occlusion row has its own
    assert sorted(a["cmax"] for a in axes.values()) == pytest.approx([0.5, 7.0])


def test_shared_scale_is_signed_when_any_map_is():
    s = scale_for([np.array([0.0, 1.0]), np.array([-5.0, 2.0])], "shared")[0]
    assert s.signed and (s.zmin, s.zmax) == (-5.0, 5.0)


def test_clip_percentile_ignores_outliers():
    v = np.concatenate([np.ones(999), [1000.0]])
    assert scale_for([v])[0].zmax == 1000.0
    assert scale_for([v], clip_percentile=99.5)[0].zmax == pytest.approx(1.0)
    assert scale_for([np.concatenate([v, -v])], clip_percentile=99.5)[0].zmin == pytest.approx(-1.0)


@pytest.mark.parametrize("values", [np.zeros((4, 4)), np.full((3, 3), np.nan), np.full(5, 7.0), np.array([])])
@pytest.mark.parametrize("mode", ["per_map", "shared", "signed"])
def test_flat_nan_and_empty_maps_get_a_valid_range(values, mode):
    s = scale_for([values], mode)[0]
    assert np.isfinite([s.zmin, s.zmax]).all() and s.zmax > s.zmin
    if s.signed:
        assert s.zmin == -s.zmax


def test_scale_options_are_validated():
    with pytest.raises(ExplainerError):
        scale_for([np.ones(2)], mode="bogus")
    with pytest.raises(ExplainerError):
        scale_for([np.ones(2)], clip_percentile=10)
    with pytest.raises(ExplainerError):
        scale_for([np.ones(2)], signed=[True, False])


def test_resolve_grid_scales_checks_shape():
    with pytest.raises(ExplainerError):
        scales.resolve_grid_scales([[np.ones(2)], [np.ones(2), np.ones(2)]], None)
    with pytest.raises(ExplainerError):
        scales.resolve_grid_scales([[np.ones(2), np.ones(2)]], [[None]])


# ---------------------------------------------------------------- image


def test_overlay_has_photo_then_heatmap_with_opacity_value_hover_and_scale():
    heat = RNG.standard_normal((30, 40))
    fig = image.overlay_figure(IMG, heat, opacity=0.3, title="IG")
    assert [t.type for t in fig.data] == ["image", "heatmap"]
    hm = fig.data[1]
    assert hm.opacity == 0.3 and "%{z" in hm.hovertemplate and "%{x" in hm.hovertemplate
    assert np.array_equal(np.asarray(hm.z), heat.astype(np.float32))
    ca = fig.layout.coloraxis
    assert ca.cmin == pytest.approx(-np.abs(heat).max()) and ca.cmax == pytest.approx(np.abs(heat).max())
    assert ca.colorscale and fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.scaleanchor == "x"


def test_low_resolution_map_is_stretched_over_the_photo_without_resampling():
    heat = np.arange(12.0).reshape(3, 4)  # photo is 30 x 40: cells of 10 x 10 pixels
    hm = heatmaps(image.overlay_figure(IMG, heat))[0]
    assert np.array_equal(np.asarray(hm.z), heat)
    assert (hm.dx, hm.dy) == (10.0, 10.0)
    assert hm.x0 - hm.dx / 2 == -0.5 and hm.y0 - hm.dy / 2 == -0.5  # covers the photo's pixel edges exactly
    assert hm.x0 + hm.dx * 3 + hm.dx / 2 == 39.5


def test_bad_shapes_raise_the_user_facing_error():
    with pytest.raises(ExplainerError):
        image.overlay_figure(IMG, np.ones((2, 3, 4)))
    with pytest.raises(ExplainerError):
        image.photo_figure(np.ones((4, 4, 5)))
    with pytest.raises(ExplainerError):
        image.map_grid(IMG, [[np.ones((30, 40))], []])


def test_float_and_gray_photos_are_accepted():
    assert image.as_rgb_uint8(np.ones((5, 6))).shape == (5, 6, 3)
    assert image.as_rgb_uint8(np.full((5, 6, 3), 0.5))[0, 0, 0] == 128


def grid_maps():
    pos = RNG.random((30, 40))
    signed = RNG.standard_normal((30, 40))
    return [[pos, signed * 5], [pos * 0.01, None]]


def test_map_grid_links_axes_and_keeps_one_scaleanchor():
    fig = image.map_grid(IMG, grid_maps(), ["tiger cat", "tabby"], ["Grad-CAM", "IG"])
    lay = fig.layout
    assert lay.xaxis.matches is None and lay.yaxis.matches is None and lay.yaxis.scaleanchor == "x"
    for k in (2, 3, 4):
        assert lay[f"xaxis{k}"].matches == "x" and lay[f"yaxis{k}"].matches == "y"
        assert lay[f"yaxis{k}"].range[0] > lay[f"yaxis{k}"].range[1] and lay[f"yaxis{k}"].scaleanchor is None
    assert len(heatmaps(fig)) == 3  # the None cell has no heatmap
    assert sum(t.type == "image" for t in fig.data) == 4
    assert any(a.text == "not computed" for a in lay.annotations)


def test_map_grid_per_map_scales_give_one_coloraxis_and_colorbar_each():
    fig = image.map_grid(IMG, grid_maps())
    axes = [h.coloraxis for h in heatmaps(fig)]
    assert axes == ["coloraxis", "coloraxis2", "coloraxis3"]
    ranges = [(fig.layout[a].cmin, fig.layout[a].cmax) for a in axes]
    assert len(set(ranges)) == 3
    assert fig.layout.coloraxis2.cmin == -fig.layout.coloraxis2.cmax  # the signed map
    xs = [fig.layout[a].colorbar.x for a in axes]
    assert xs[0] < xs[1] and xs[2] == xs[0]  # each bar under its own map
    assert all(fig.layout[a].colorbar.orientation == "h" and fig.layout[a].colorbar.exponentformat == "SI" for a in axes)


def test_map_grid_shared_scale_is_identical_across_subplots():
    maps = grid_maps()
    shared = scale_for([m for r in maps for m in r], "shared")[0]
    fig = image.map_grid(IMG, maps, scales=shared)
    assert {(fig.layout[h.coloraxis].cmin, fig.layout[h.coloraxis].cmax) for h in heatmaps(fig)} == {(-shared.zmax, shared.zmax)}
    assert "One colour scale shared" in fig.layout.annotations[-1].text
    assert not fig.layout.updatemenus  # scales given: drawn as given, only the opacity slider
    assert len(fig.layout.sliders) == 1


LONGEST = ["Grad-CAM (negative)", "Smooth Grad-CAM++", "Integrated Gradients", "Edges (Sobel, control)",
           "A label far longer than any map is wide, to be cut", "CAM", "Saliency", "VarGrad"]


def boxes_px(fig: go.Figure) -> list[tuple[float, float, float, float]]:
    """Every map's box in pixels (x0, y0, x1, y1) from the figure's top-left corner."""
    lay = fig.layout
    plot_w = lay.width - lay.margin.l - lay.margin.r
    plot_h = lay.height - lay.margin.t - lay.margin.b
    out = []
    for k in range(1, len(heatmaps(fig)) + sum(t.opacity == 0.35 for t in fig.data if t.type == "image") + 1):
        x, y = lay[f"xaxis{k if k > 1 else ''}"].domain, lay[f"yaxis{k if k > 1 else ''}"].domain
        out.append((lay.margin.l + x[0] * plot_w, lay.margin.t + (1 - y[1]) * plot_h,
                    lay.margin.l + x[1] * plot_w, lay.margin.t + (1 - y[0]) * plot_h))
    return out


def test_map_grid_wraps_instead_of_shrinking_and_cuts_titles_to_their_map():
    maps = [[RNG.random((30, 40)) for _ in LONGEST] for _ in range(3)]
    fig = image.map_grid(IMG, maps, ["tiger cat", "tabby", "Egyptian cat"], LONGEST, columns=4)
    boxes = boxes_px(fig)
    assert len(boxes) == 24
    assert all(x1 - x0 >= 240 - 1e-6 for x0, _, x1, _ in boxes)  # 40 x 30 photo: 240 x 180 boxes
    assert fig.layout.width <= 1100  # four per line fit a 1600-pixel window beside the sidebar
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes[a], boxes[b]
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, (a, b)
    titles = [a for a in fig.layout.annotations if a.text.startswith("<b>") and a.yref == "paper" and a.xanchor == "center"]
    assert len(titles) == 24
    cut = [t for t in titles if t.hovertext]
    assert cut and all(t.text.endswith("…</b>") and t.hovertext == LONGEST[4] for t in cut)
    assert all(len(re.sub("<[^>]+>", "", t.text)) * 7.6 <= 240 for t in titles)
    headers = [a.text for a in fig.layout.annotations if a.xanchor == "left" and a.text.startswith("<b>")]
    assert headers == ["<b>tiger cat</b>", "<b>tabby</b>", "<b>Egyptian cat</b>"]


def test_map_grid_colour_follows_the_records_kinds():
    pos = np.abs(RNG.standard_normal((30, 40))) + 0.1
    neg_in_unsigned = RNG.standard_normal((30, 40))
    kinds = [scales.MapKind(signed=True, family="cam"), scales.MapKind(family="cam"),
             scales.MapKind(family="cam", against=True), scales.MapKind(family="gradient")]
    maps = [[pos, pos * 3, pos * 2, neg_in_unsigned], [pos * 10, pos, pos, pos]]
    presets = scales.grid_presets(maps, kinds)
    own = presets["own", False]
    assert own[0][0].signed and own[0][0].zmin == -own[0][0].zmax  # signed record: diverging, although all > 0
    assert not own[0][1].signed and own[0][1].zmin == 0.0
    assert own[0][3].signed  # a negative value is never drawn on a sequential scale
    method = presets["method", False]
    assert method[0][0] is method[1][0] and method[0][0].zmax == pytest.approx(pos.max() * 10)
    family = presets["family", False]
    assert family[0][1] is family[0][2] is family[1][1] and family[0][0] is not family[0][1]  # same family, same sign
    assert family[0][3] is not family[1][3]  # gradient column: signed map and unsigned map never share
    fig = image.map_grid(IMG, maps, ["a", "b"], ["CAM", "Grad-CAM", "Grad-CAM (negative)", "Saliency"], kinds=kinds,
                         mode=("family", False))
    caption = fig.layout.annotations[-1].text
    assert "Grad-CAM (negative): bright is evidence against the class" in caption
    assert "CAM: red raises the class score" in caption and "same units" in caption


def test_map_grid_controls_restyle_and_relayout_in_the_browser():
    maps = [[RNG.random((30, 40)), RNG.standard_normal((30, 40))]]
    kinds = [scales.MapKind(family="cam"), scales.MapKind(signed=True, family="gradient")]
    fig = image.map_grid(IMG, maps, ["a"], ["Grad-CAM", "IG"], kinds=kinds, opacity=0.55)
    heat_at = [i for i, t in enumerate(fig.data) if t.type == "heatmap"]
    (slider,) = fig.layout.sliders
    assert slider.steps[slider.active].args[0] == {"opacity": 0.55}
    assert all(step.method == "restyle" and list(step.args[1]) == heat_at for step in slider.steps)
    colours, presets = fig.layout.updatemenus
    assert all(set(b.args[0]) == {"coloraxis.colorscale"} for b in colours.buttons)  # the diverging IG axis is left alone
    expected = scales.grid_presets(maps, kinds)
    for button, key in zip(presets.buttons, expected):
        args = button.args[0]
        assert (args["coloraxis.cmin"], args["coloraxis2.cmax"]) == (expected[key][0][0].zmin, expected[key][0][1].zmax)
        assert args[f"annotations[{len(fig.layout.annotations) - 1}].text"].startswith(
            "Each map" if key[0] == "own" else "Each method" if key[0] == "method" else "Maps of one")
    assert presets.buttons[presets.active].label == "Scale: own per map, clipped p99.5"


def test_map_grid_cells_without_a_map_say_why():
    fig = image.map_grid(IMG, [[None, RNG.random((30, 40))]], notes=[["computing…", None]])
    assert any(a.text == "computing…" for a in fig.layout.annotations)


def test_topk_bar_keeps_duplicate_labels_and_highlights():
    fig = image.topk_bar(["crane", "crane", "heron"], [0.5, 0.3, 0.2], highlight=1)
    bar = fig.data[0]
    assert list(bar.y) == [0, 1, 2] and list(fig.layout.yaxis.ticktext) == ["crane", "crane", "heron"]
    assert bar.marker.color[1] != bar.marker.color[0]
    assert fig.layout.yaxis.autorange == "reversed"


# ---------------------------------------------------------------- text


def test_wrapping_preserves_order_and_respects_width():
    tokens = [f"tok{i}" for i in range(40)]
    lines, starts, widths = text.wrap_tokens(tokens, width=20)
    assert lines.max() >= 3
    order = sorted(range(len(tokens)), key=lambda i: (lines[i], starts[i]))
    assert order == list(range(len(tokens)))
    assert np.all(starts + widths <= 20)
    assert np.all(np.diff(lines) >= 0)


def test_overlong_token_gets_its_own_line():
    lines, _, _ = text.wrap_tokens(["a", "x" * 50, "b"], width=10)
    assert list(lines) == [0, 1, 2]


def test_token_heatmap_bars_carry_token_word_score_in_hover():
    tokens = ["[CLS]", "un", "##believ", "##able", "<s>", "[SEP]"]
    words = ["[CLS]", "unbelievable", "unbelievable", "unbelievable", "<s>", "[SEP]"]
    scores = np.array([9.0, 0.5, -1.0, 0.25, 0.1, 9.0])
    special = [True, False, False, False, False, True]
    fig = text.token_heatmap(tokens, scores, words=words, special=special)
    normal, spec = [t for t in fig.data if t.type == "bar"]  # the tokens (the last trace carries the colour bar)
    assert list(normal.text) == ["un", "##believ", "##able", "&lt;s&gt;"]
    assert list(spec.text) == ["[CLS]", "[SEP]"] and spec.marker.coloraxis is None
    assert [row[2] for row in normal.customdata] == [0.5, -1.0, 0.25, 0.1]
    assert normal.customdata[0][1] == "unbelievable"
    assert "customdata[0]" in normal.hovertemplate and "customdata[2]" in normal.hovertemplate
    assert "word:" in normal.hovertemplate
    assert "word:" not in text.token_heatmap(["a"], np.ones(1)).data[0].hovertemplate  # word mode: no echo
    # special tokens are left out of the automatic scale; signed data gives a centred scale
    assert fig.layout.coloraxis.cmin == -1.0 and fig.layout.coloraxis.cmax == 1.0


def test_token_text_contrasts_with_its_box():
    s = Scale(-1.0, 1.0, "RdBu_r", True, "")
    dark_end, middle = text.text_colours(np.array([1.0, 0.0]), s)
    assert dark_end == "#ffffff" and middle == "#111111"


def test_token_rows_share_one_scale_or_get_one_each():
    rows = [text.TokenRow("good", ["good"], np.array([1.0])), text.TokenRow("not good", ["not", "good"], np.array([-4.0, 2.0]))]
    shared = text.token_heatmap_rows(rows)
    assert [t.marker.coloraxis for t in shared.data if t.type == "scatter"] == ["coloraxis"]  # the bars' carriers
    assert (shared.layout.coloraxis.cmin, shared.layout.coloraxis.cmax) == (-4.0, 4.0)
    own = text.token_heatmap_rows(rows, shared=False)
    assert [t.marker.coloraxis for t in own.data if t.type == "scatter"] == ["coloraxis", "coloraxis2"]
    assert own.layout.coloraxis.cmax == 1.0 and own.layout.coloraxis2.cmax == 4.0


def test_token_row_note_sits_on_its_own_line_under_the_row():
    rows = [text.TokenRow("IG", ["a"] * 30, np.arange(30.0), note="delta <+0.01>"), text.TokenRow("S", ["b"], np.ones(1))]
    fig = text.token_heatmap_rows(rows, width=20)  # 30 two-column tokens at 20 per line: 3 lines
    notes = [a for a in fig.layout.annotations if "delta" in a.text]
    assert len(notes) == 1 and notes[0].text == "delta &lt;+0.01&gt;"
    assert (notes[0].xref, notes[0].yref, notes[0].y) == ("x", "y", 3)  # first row, the line after its tokens
    assert tuple(fig.layout.yaxis.range) == (3.5, -0.5) and tuple(fig.layout.yaxis2.range) == (0.5, -0.5)
    assert rows[0].lines(20) == 4 and rows[1].lines(20) == 1
    plain = text.token_heatmap_rows([text.TokenRow("IG", ["a"] * 30, np.arange(30.0)), rows[1]], width=20)
    assert fig.layout.height - plain.layout.height == text.LINE_PX


def test_token_rows_take_signed_per_row():
    rows = [text.TokenRow("IG", ["a", "b"], np.array([1.0, 3.0])), text.TokenRow("S", ["a", "b"], np.array([1.0, 2.0]))]
    fig = text.token_heatmap_rows(rows, shared=False, signed=[True, False])
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-3.0, 3.0)  # diverging although all > 0
    assert (fig.layout.coloraxis2.cmin, fig.layout.coloraxis2.cmax) == (0.0, 2.0)
    bar = fig.layout.coloraxis2.colorbar  # a one-line row's own bar stays tall enough for its 3 ticks
    assert bar.lenmode == "pixels" and bar.len >= text.LINE_PX + 15 and bar.nticks == 3
    shared = text.token_heatmap_rows(rows, shared=True, signed=[True, False])
    assert (shared.layout.coloraxis.cmin, shared.layout.coloraxis.cmax) == (-3.0, 3.0)


def test_token_rows_validate_lengths():
    with pytest.raises(ExplainerError):
        text.token_heatmap(["a", "b"], np.ones(3))


def test_row_normalisation():
    s = np.array([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0], [-3.0, 1.5, 0.0]])
    unsigned = text.normalise_rows(np.abs(s), signed=False)
    np.testing.assert_allclose(unsigned, [[0.25, 0.5, 1.0], [0, 0, 0], [1.0, 0.5, 0.0]])
    np.testing.assert_allclose(text.normalise_rows(s, signed=True)[2], [-1.0, 0.5, 0.0])


def test_layers_tokens_heatmap_hover_keeps_raw_scores_under_row_normalisation():
    s = np.array([[1.0, 2.0, 4.0], [10.0, 0.0, 5.0]])
    tokens = ["the", "the", "end"]
    fig = text.layers_tokens_heatmap(s, tokens, ["emb", "layer 1"], normalise="row")
    hm = fig.data[0]
    np.testing.assert_allclose(np.asarray(hm.z), [[0.25, 0.5, 1.0], [1.0, 0.0, 0.5]])
    assert hm.customdata[1][0] == ["layer 1", "the", 10.0]
    assert list(fig.layout.xaxis.ticktext) == tokens and list(fig.layout.xaxis.tickvals) == [0, 1, 2]
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, 1.0)
    glob = text.layers_tokens_heatmap(-s, tokens, normalise="global")
    assert glob.layout.coloraxis.cmin == -glob.layout.coloraxis.cmax == -10.0
    with pytest.raises(ExplainerError):
        text.layers_tokens_heatmap(s, tokens[:2])


def test_attention_heatmap_is_square_with_token_ticks():
    att = RNG.random((4, 4))
    fig = text.attention_heatmap(att, ["[CLS]", "a", "a", "[SEP]"], title="layer 3, head 2")
    hm = fig.data[0]
    assert hm.zmin == 0 and hm.zmax == pytest.approx(att.max())
    assert hm.customdata[0][3] == ["[CLS]", "[SEP]"]
    with pytest.raises(ExplainerError):
        text.attention_heatmap(att, ["a", "b"])


# ---------------------------------------------------------------- evaluation


def test_curves_one_line_per_method_plus_dashed_random_with_auc_in_legend():
    x = np.linspace(0, 1, 5)
    fig = evaluation.curves_figure(x, {"Grad-CAM": x[::-1], "IG": x[::-1] ** 2}, random=1 - x / 2,
                                   auc={"Grad-CAM": 0.5, "random": 0.75})
    assert [t.name for t in fig.data] == ["Grad-CAM (AUC 0.500)", "IG", "random (AUC 0.750)"]
    assert fig.data[2].line.dash == "dash"
    with pytest.raises(ExplainerError):
        evaluation.curves_figure(x, {"bad": [1, 2]})


def test_agreement_and_cascade_figures():
    m = np.array([[1.0, 0.2], [0.2, 1.0]])
    hm = evaluation.agreement_heatmap(m, ["A", "B"]).data[0]
    assert (hm.zmin, hm.zmax) == (-1.0, 1.0) and hm.texttemplate
    fig = evaluation.correlation_cascade(["logits", "block 7", "block 6"], {"Grad-CAM": [1.0, 0.4, 0.1]})
    assert list(fig.data[0].y) == [1.0, 0.4, 0.1] and list(fig.layout.xaxis.ticktext)[1] == "block 7"
    with pytest.raises(ExplainerError):
        evaluation.correlation_cascade(["a"], {"m": [1.0, 2.0]})


# ---------------------------------------------------------------- export


def test_html_is_self_contained():
    page = export.to_html(image.overlay_figure(IMG, RNG.random((30, 40))))
    assert page.lstrip().lower().startswith("<html") or page.lstrip().lower().startswith("<!doctype")
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js inlined (several MB)
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, flags=re.I)


def test_npz_round_trip_without_pickle():
    maps = {"grad_cam": RNG.random((7, 7)).astype(np.float32), "ig": RNG.standard_normal((4, 5))}
    data = np.load(io.BytesIO(export.maps_npz(maps, {"model": "efficientnet_lite0", "target": 285})), allow_pickle=False)
    for k, v in maps.items():
        np.testing.assert_array_equal(data[k], v)
        assert data[k].dtype == v.dtype
    assert json.loads(str(data["meta"])) == {"model": "efficientnet_lite0", "target": 285}
    with pytest.raises(ExplainerError):
        export.maps_npz({"meta": np.ones(1)})


@pytest.mark.parametrize("shared", [False, True])
def test_grid_png_has_the_documented_size(shared):
    maps = grid_maps()
    sc = scale_for([m for r in maps for m in r], "shared")[0] if shared else None
    data = export.grid_png(IMG, maps, ["a", "b"], ["c", "d"], scales=sc, cell_px=100)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    size = Image.open(io.BytesIO(data)).size
    assert size == export.grid_png_size(2, 2, 100, IMG.shape[:2], per_map_bars=not shared, row_titles=True)
    assert size == ((40 + 2 * 100 + 100 // 3) if shared else (40 + 2 * 125), 40 + 2 * 75 + 16)


def test_grid_png_paints_the_map_with_its_colours():
    black = np.zeros((20, 20, 3), np.uint8)
    heat = np.zeros((20, 20))
    heat[:, 10:] = 1.0  # left half 0 (darkest), right half 1 (brightest)
    s = scale_for([heat])[0]
    png = np.asarray(Image.open(io.BytesIO(export.grid_png(black, [[heat]], scales=s, opacity=1.0, cell_px=200))).convert("RGB"))
    cmap = export.matplotlib_cmap(s)
    left_px, right_px = png[40 + 100, 8 + 50], png[40 + 100, 8 + 150]
    np.testing.assert_allclose(left_px, np.array(cmap(0.0)[:3]) * 255, atol=3)
    np.testing.assert_allclose(right_px, np.array(cmap(1.0)[:3]) * 255, atol=3)


def test_matplotlib_cmap_matches_plotly_stops():
    cmap = export.matplotlib_cmap(Scale(-1, 1, "RdBu_r", True, ""))
    np.testing.assert_allclose(np.array(cmap(0.0)[:3]) * 255, [5, 48, 97], atol=1)
    np.testing.assert_allclose(np.array(cmap(1.0)[:3]) * 255, [103, 0, 31], atol=1)


def test_signed_overlays_fade_to_transparent_at_zero_in_both_renderers():
    s = scale_for([np.array([-1.0, 1.0])])[0]
    stops = scales.colour_stops(s, fade_centre=True)
    alpha = {p: c[3] for p, c in stops}
    assert alpha[0.0] == alpha[1.0] == 1.0 and alpha[0.5] == 0.0
    assert all(c[3] == 1.0 for _, c in scales.colour_stops(s))  # token boxes and bars stay opaque
    fig = image.overlay_figure(IMG, np.array([[-1.0, 1.0]]))
    assert fig.layout.coloraxis.colorscale[10][1].endswith(",0.000)")  # the centre stop
    black = np.zeros((20, 20, 3), np.uint8)
    heat = np.zeros((20, 20))
    heat[0, 0], heat[-1, -1] = -1.0, 1.0  # sets the range; everything else is 0
    png = np.asarray(Image.open(io.BytesIO(export.grid_png(black, [[heat]], opacity=1.0, cell_px=200))).convert("RGB"))
    assert png[40 + 100, 8 + 100].max() <= 2  # the black photo shows through where the map is 0


def test_nan_and_constant_inputs_do_not_crash_any_builder():
    nan_map = np.full((30, 40), np.nan)
    flat = np.zeros((30, 40))
    image.overlay_figure(IMG, nan_map)
    image.map_grid(IMG, [[nan_map, flat]])
    export.grid_png(IMG, [[nan_map, flat]])
    text.token_heatmap(["a", "b"], np.array([np.nan, np.nan]))
    text.layers_tokens_heatmap(np.zeros((2, 2)), ["a", "b"], normalise="row")
    text.attention_heatmap(np.zeros((2, 2)), ["a", "b"])
    image.topk_bar(["a"], [np.nan])
