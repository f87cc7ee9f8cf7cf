"""The method registry: one record per method, the only list of methods in the project.

A record (:class:`Method`, subclassed once per method in :mod:`explainers.catalog`) holds what
a method *is*: its name, label, one-sentence caption, source, family, the input kinds it
serves, capability flags, its option tables, and its computation. Pages, figures, evaluation,
reports and the CLI read everything from here: ``methods(kind)`` lists, ``method(name)``
returns one. Adding a method is one file in ``explainers/catalog/`` that subclasses
:class:`Method` (or :class:`explainers.cam.LayerMethod`) and decorates it with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from explainers.errors import ExplainerError
from explainers.options import OptionTable

FAMILIES = ("cam", "gradient", "perturbation", "attention", "control")
KINDS = ("image", "text")


class Method:
    """A method's record. Subclasses set the class attributes and implement the computations.

    - ``name``: the key used everywhere (``explain(..., "grad_cam")``); ``label``: shown to users;
      ``caption``: one plain-language sentence on what the colours mean; ``details``: optional
      further sentences; ``source``: the paper.
    - ``family``: one of :data:`FAMILIES`; ``kinds``: the inputs it serves (:data:`KINDS`).
    - Flags: ``needs_layer`` (reads a layer's output: the CAM family), ``needs_gradients``,
      ``signed`` (maps take both signs: shown on a diverging scale), ``has_delta`` (a
      completeness/convergence delta in ``extras``), ``model_agnostic`` (only queries the
      model's outputs), ``shares_layer_pass`` (computed from the one shared layer pass of
      :func:`explainers.cam.layer_pass` with no passes of its own), ``slow`` (many passes:
      UIs compute it after the fast ones, with progress), ``target_independent``, ``per_layer``
      (one row per layer: the layers x tokens view), ``default`` (selected when a page opens),
      ``noisy`` (averages over SmoothGrad's noisy copies: noisy methods asked for together with the
      same noise options share one set of passes), ``own_forward`` (text: its pass also gives the
      prediction, so text from a raw string needs no separate forward).
    - ``options`` / ``text_options``: option tables for images / text (:mod:`explainers.options`).
    - ``evidence_against``: the map shows evidence *against* the target (a counterfactual map).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    caption: ClassVar[str]
    details: ClassVar[str] = ""
    source: ClassVar[str]
    family: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]] = ("image",)
    needs_layer: ClassVar[bool] = False
    needs_gradients: ClassVar[bool] = True
    signed: ClassVar[bool] = False
    has_delta: ClassVar[bool] = False
    model_agnostic: ClassVar[bool] = False
    shares_layer_pass: ClassVar[bool] = False
    slow: ClassVar[bool] = False
    target_independent: ClassVar[bool] = False
    per_layer: ClassVar[bool] = False
    default: ClassVar[bool] = False
    noisy: ClassVar[bool] = False
    own_forward: ClassVar[bool] = False
    evidence_against: ClassVar[bool] = False
    options: ClassVar[OptionTable] = {}
    text_options: ClassVar[OptionTable] = {}

    def explain_image(self, model: Any, x: Any, target: Any, options: dict[str, Any]) -> Any:
        """Image methods that do not share the layer pass: ``Attribution`` for ``x`` (B, C, H, W)."""
        raise ExplainerError(f"{self.label} does not explain images.")

    def explain_text(self, model: Any, tokenizer: Any, prepared: Any, target: int, options: dict[str, Any]) -> Any:
        """Text methods: ``(scores (T,) or (L, T) tensor, extras dict)`` for one prepared text."""
        raise ExplainerError(f"{self.label} does not explain text.")

    def forwards(self, shape: tuple[int, ...], options: Mapping[str, Any] | None = None, kind: str = "image") -> int | None:
        """The model forwards (input rows, no gradient) a run needs, for a cost estimate before a long run:
        ``shape`` is the input's ((B, C, H, W) images, (T,) tokens of a text), ``options`` as given
        (defaults fill the rest). Not counted: the one forward of the input that reads its predicted
        class. None: the method does not count them (one or a few passes, or gradient passes)."""
        return None

    def supports_text_model(self, model: Any) -> bool:
        """Whether this text method applies to ``model`` (e.g. attention needs a transformer)."""
        return "text" in self.kinds

    def supports_image_model(self, model: Any) -> bool:
        """Whether this image method applies to ``model``: the attention family needs a ViT's
        class-token attention (:func:`explainers.attention.has_class_token_attention`)."""
        if "image" not in self.kinds:
            return False
        if self.family != "attention":
            return True
        from explainers.attention import has_class_token_attention

        return has_class_token_attention(model)

    def option_table(self, kind: str = "image") -> OptionTable:
        """The options this method takes for inputs of ``kind``."""
        if kind not in self.kinds:
            raise ExplainerError(f"{self.label} does not explain {kind} inputs (it serves: {', '.join(self.kinds)}).")
        return self.options if kind == "image" else self.text_options

    def defaults(self, kind: str = "image") -> dict[str, Any]:
        return {name: option.default for name, option in self.option_table(kind).items()}

    def __repr__(self) -> str:
        return f"<method {self.name}: {self.label} ({self.family}; {', '.join(self.kinds)})>"


_REGISTRY: dict[str, Method] = {}
ALIASES = {"grad_x_input": "input_x_gradient"}
"""Old method names that keep working (the text library's names before the one registry)."""


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: add one instance of ``cls`` to the registry (names must be unique)."""
    if cls.family not in FAMILIES or not set(cls.kinds) <= set(KINDS):
        raise TypeError(f"{cls.__name__}: family {cls.family!r} / kinds {cls.kinds!r} not in {FAMILIES} / {KINDS}")
    if cls.name in _REGISTRY:
        raise TypeError(f"method {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def _load() -> Mapping[str, Method]:
    import explainers.catalog  # noqa: F401  (each module of the package registers its records)

    return _REGISTRY


def methods(kind: str | None = None, family: str | None = None) -> list[Method]:
    """Every registered method (in registration order), optionally only those for ``kind`` / of ``family``."""
    if kind is not None and kind not in KINDS:
        raise ExplainerError(f"Unknown input kind {kind!r}; choose one of {', '.join(KINDS)}.")
    return [m for m in _load().values() if (kind is None or kind in m.kinds) and (family is None or m.family == family)]


def method(name: str, kind: str | None = None) -> Method:
    """The record called ``name`` (old aliases accepted), checked to serve ``kind`` if given."""
    registry = _load()
    record = registry.get(ALIASES.get(name, name)) if isinstance(name, str) else None
    if record is None:
        names = [m.name for m in methods(kind)]
        raise ExplainerError(f"Unknown method {name!r}; choose one of {', '.join(names)}.")
    if kind is not None and kind not in record.kinds:
        names = [m.name for m in methods(kind)]
        raise ExplainerError(f"{record.label} does not explain {kind} inputs; choose one of {', '.join(names)}.")
    return record


def names(kind: str | None = None) -> tuple[str, ...]:
    """The names of :func:`methods` (kind)."""
    return tuple(m.name for m in methods(kind))
