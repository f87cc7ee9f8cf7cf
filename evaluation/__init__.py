"""Can a map be trusted? Faithfulness, controls, sanity checks and agreement, in pure torch/numpy.

- :mod:`evaluation.faithfulness`: deletion/insertion curves and their AUC (Petsiuk et al. 2018)
  for image maps (:func:`score_maps`, :func:`score_map`) and token scores (:func:`score_tokens`),
  against a floor of random maps at each method's own resolution.
- :mod:`evaluation.road`: ROAD, noisy linear imputation (Rong et al. 2022): :func:`road_scores`.
- :mod:`evaluation.controls`: random maps, a Sobel edge map and a centred Gaussian.
- :mod:`evaluation.verdict`: what a number means (:class:`Verdict`, per metric, with its reason).
- :mod:`evaluation.scoring`: methods by name, with the controls: :func:`score_methods`.
- :mod:`evaluation.randomisation`: the model-randomisation sanity check (Adebayo et al. 2018):
  the cascade and :func:`sanity_check` against its noise floor.
- :mod:`evaluation.agreement`: one definition of agreement between two maps.
- :mod:`evaluation.convergence`: Integrated Gradients' completeness gap against its step count.
"""

from evaluation.agreement import Agreement, agreement, rank_agreement
from evaluation.controls import centre_map, control_maps, random_maps, sobel_map
from evaluation.convergence import Convergence, image_ig_convergence, text_ig_convergence
from evaluation.faithfulness import FaithfulnessScore, Floor, score_map, score_maps, score_tokens
from evaluation.randomisation import Cascade, Sanity, randomisation_cascade, randomisation_groups, sanity_check
from evaluation.ranking import average_ranks, spearman, top_k_overlap
from evaluation.road import RoadFloor, RoadScore, road_scores
from evaluation.scoring import Scored, score_methods
from evaluation.verdict import Verdict

__all__ = [
    "Agreement",
    "Cascade",
    "Convergence",
    "FaithfulnessScore",
    "Floor",
    "RoadFloor",
    "RoadScore",
    "Sanity",
    "Scored",
    "Verdict",
    "agreement",
    "average_ranks",
    "centre_map",
    "control_maps",
    "image_ig_convergence",
    "random_maps",
    "randomisation_cascade",
    "randomisation_groups",
    "rank_agreement",
    "road_scores",
    "sanity_check",
    "score_map",
    "score_maps",
    "score_methods",
    "score_tokens",
    "sobel_map",
    "spearman",
    "text_ig_convergence",
    "top_k_overlap",
]
