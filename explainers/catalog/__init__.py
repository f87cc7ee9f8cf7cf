"""One module per method (or per small group of variants); importing the package registers them all.

Order of registration = order of the modules listed in ``ORDER`` (how menus list them), then
any other module of the package alphabetically, so a new method file needs no edit here.
"""

import importlib
import pkgutil

ORDER = (
    "cam", "grad_cam", "grad_cam_plus_plus", "smooth_grad_cam_plus_plus", "hirescam", "xgrad_cam", "layer_cam",
    "eigen_cam", "score_cam", "ablation_cam", "integrated_gradients", "saliency", "input_x_gradient", "smoothgrad",
    "vargrad", "occlusion", "rise", "lime", "random_map", "sobel", "layer_grad_cam", "attention_rollout",
)

_found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
for _name in [*[n for n in ORDER if n in _found], *[n for n in _found if n not in ORDER]]:
    importlib.import_module(f"{__name__}.{_name}")
