"""Can a map be trusted? Faithfulness, sanity checks and agreement, in pure torch/numpy.

- :mod:`evaluation.faithfulness`: deletion/insertion curves and their AUC (Petsiuk et al. 2018)
  for image maps (:func:`score_maps`, :func:`score_map`) and token scores (:func:`score_tokens`),
  with a random-map floor.
- :mod:`evaluation.randomisation`: the model-randomisation sanity check (Adebayo et al. 2018).
- :mod:`evaluation.agreement`: Spearman and top-k overlap between every pair of methods.
- :mod:`evaluation.convergence`: Integrated Gradients' completeness gap against its step count.
"""

from evaluation.agreement import Agreement, agreement
from evaluation.convergence import Convergence, image_ig_convergence, text_ig_convergence
from evaluation.faithfulness import FaithfulnessScore, score_map, score_maps, score_tokens
from evaluation.randomisation import Cascade, randomisation_cascade, randomisation_groups
from evaluation.ranking import average_ranks, spearman, top_k_overlap

__all__ = [
    "Agreement",
    "Cascade",
    "Convergence",
    "FaithfulnessScore",
    "agreement",
    "average_ranks",
    "image_ig_convergence",
    "randomisation_cascade",
    "randomisation_groups",
    "score_map",
    "score_maps",
    "score_tokens",
    "spearman",
    "text_ig_convergence",
    "top_k_overlap",
]
