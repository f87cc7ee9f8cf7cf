"""Attribution methods for image and text classifiers, in pure torch (no UI imports).

``methods(kind)`` / ``method(name)``: the registry (every method's record);
``explain(model, x, method, target=None, layer=None, **options) -> Attribution``;
``explain_many`` shares one forward between the CAM-family methods and several targets;
``explain_text`` / ``explain_text_many`` for text classifiers.
"""

from explainers.activation_max import MAX_UNITS, Optimised, maximise_activation, unit_activations
from explainers.api import explain, explain_many
from explainers.attribution import Attribution, Explanation
from explainers.errors import ExplainerError
from explainers.features import FeatureMaps, feature_maps
from explainers.options import Option
from explainers.registry import Method, method, methods, names
from explainers.text import PreparedText, TextAttribution, explain_text, explain_text_many, prepare_text, text_methods

__all__ = [
    "MAX_UNITS", "Attribution", "ExplainerError", "Explanation", "FeatureMaps", "Method", "Optimised", "Option",
    "PreparedText", "TextAttribution", "explain", "explain_many", "explain_text", "explain_text_many", "feature_maps",
    "maximise_activation", "method", "methods", "names", "prepare_text", "text_methods", "unit_activations",
]


def __getattr__(name: str):
    """Old spellings, derived from the registry: ``METHODS``, ``OPTIONS``, ``TEXT_METHODS``."""
    from explainers import api, text

    if name in ("METHODS", "OPTIONS"):
        return getattr(api, name)
    if name == "TEXT_METHODS":
        return text.TEXT_METHODS
    raise AttributeError(name)
