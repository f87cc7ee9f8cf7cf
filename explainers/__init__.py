"""Attribution methods for image classifiers, in pure torch (no UI imports).

``explain(model, x, method, target=None, layer=None, **options) -> Attribution``;
``explain_many`` shares one forward between the CAM-family methods and several targets.
"""

from explainers.api import METHODS, OPTIONS, explain, explain_many
from explainers.attribution import Attribution
from explainers.errors import ExplainerError

__all__ = ["METHODS", "OPTIONS", "Attribution", "ExplainerError", "explain", "explain_many"]
from explainers.text import TEXT_METHODS, PreparedText, TextAttribution, explain_text, explain_text_many, prepare_text, text_methods  # noqa: E501
from explainers.activation_max import MAX_UNITS, Optimised, maximise_activation, unit_activations  # noqa: E402
from explainers.features import FeatureMaps, feature_maps  # noqa: E402
