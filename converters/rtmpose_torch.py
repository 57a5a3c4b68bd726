"""RTMPose (CSPNeXt backbone + RTMCC SimCC head) rebuilt in plain PyTorch.

The module tree mirrors mmpose's exactly, so an official mmpose checkpoint's ``state_dict`` loads with
``strict=True`` and no key renaming: attribute names here (``stem``, ``stage1``, ``main_conv``,
``depthwise_conv``, ``gau.uv``, ``res_scale.scale``, ...) are part of the checkpoint format, not style.
Nothing from mmcv / mmengine / mmpose / mmdeploy is imported; those pull in CUDA ops and registries we
neither need nor can install on the workstation reliably.

Only the inference path is rebuilt (no dropout, drop-path, relative position bias or RoPE: the body
256x192 configs turn them all off). The forward pass has no data-dependent Python control flow, so it
traces to ONNX as a static graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VARIANTS", "RTMPose", "RTMPoseVariant", "build_rtmpose"]

# The RTMPose configs override CSPNeXt's own default norm (BN, eps 1e-3, momentum 0.03) with
# norm_cfg=dict(type='SyncBN'), i.e. torch's default eps 1e-5. The reference vectors confirm 1e-5.
BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # irrelevant for inference; torch's default, as SyncBN's

# CSPNeXt arch "P5": (in_channels, out_channels, num_blocks, add_identity, use_spp) before scaling.
_P5 = (
    (64, 128, 3, True, False),
    (128, 256, 6, True, False),
    (256, 512, 6, True, False),
    (512, 1024, 3, False, True),
)


@dataclass(frozen=True)
class RTMPoseVariant:
    deepen_factor: float
    widen_factor: float

    @property
    def out_channels(self) -> int:
        return int(_P5[-1][1] * self.widen_factor)


VARIANTS: dict[str, RTMPoseVariant] = {
    "t": RTMPoseVariant(deepen_factor=0.167, widen_factor=0.375),  # 384 channels at stride 32
    "s": RTMPoseVariant(deepen_factor=0.33, widen_factor=0.5),  # 512
    "m": RTMPoseVariant(deepen_factor=0.67, widen_factor=0.75),  # 768
}


# ---------------------------------------------------------------------------------------------------
# Backbone building blocks
# ---------------------------------------------------------------------------------------------------


class ConvBNAct(nn.Module):
    """mmcv's ConvModule as RTMPose uses it: conv (no bias, since BN follows) -> BN -> SiLU.

    The child names ``conv`` and ``bn`` are the checkpoint's.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class DepthwiseSeparableConv(nn.Module):
    """Depthwise kxk conv-BN-SiLU then pointwise 1x1 conv-BN-SiLU (both with activation, as mmcv does)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int) -> None:
        super().__init__()
        self.depthwise_conv = ConvBNAct(in_ch, in_ch, kernel_size, groups=in_ch)
        self.pointwise_conv = ConvBNAct(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class CSPNeXtBlock(nn.Module):
    """3x3 conv then a 5x5 depthwise-separable conv; residual only when the stage asks for it.

    Inside a CSPLayer the block always maps mid -> mid channels (expansion 1.0), so the residual
    condition reduces to the stage's add_identity flag (False in the last, SPP stage).
    """

    def __init__(self, channels: int, add_identity: bool, kernel_size: int = 5) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(channels, channels, 3)
        self.conv2 = DepthwiseSeparableConv(channels, channels, kernel_size)
        self.add_identity = add_identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        # A constructor flag, not data: tracing sees one fixed branch.
        return out + x if self.add_identity else out


class ChannelAttention(nn.Module):
    """Squeeze-excite without a bottleneck: global average -> 1x1 conv (with bias) -> hard-sigmoid gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)
        self.act = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # mean over H, W keeps the graph free of AdaptiveAvgPool's shape arithmetic; same numbers.
        gate = self.act(self.fc(x.mean(dim=(2, 3), keepdim=True)))
        return x * gate


class CSPLayer(nn.Module):
    """Cross-stage-partial layer: two 1x1 branches, blocks on the main one, concat, attention, 1x1 fuse.

    The concat order is (main, short): swapping it would still load the weights but give wrong outputs.
    """

    def __init__(self, channels: int, num_blocks: int, add_identity: bool, expand_ratio: float = 0.5) -> None:
        super().__init__()
        mid = int(channels * expand_ratio)
        self.main_conv = ConvBNAct(channels, mid, 1)
        self.short_conv = ConvBNAct(channels, mid, 1)
        self.final_conv = ConvBNAct(2 * mid, channels, 1)
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, add_identity) for _ in range(num_blocks)])
        self.attention = ChannelAttention(2 * mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_short = self.short_conv(x)
        x_main = self.blocks(self.main_conv(x))
        return self.final_conv(self.attention(torch.cat((x_main, x_short), dim=1)))


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling (kernels 5, 9, 13, stride 1) between 1x1 convs; halves then restores width.

    Parallel pools, as mmdet's SPPBottleneck: numerically the same as YOLOv5's sequential SPPF
    (three 5x5 pools), but the parallel form is the one the checkpoint was trained with.
    """

    def __init__(self, channels: int, kernel_sizes: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        mid = channels // 2
        self.conv1 = ConvBNAct(channels, mid, 1)
        self.poolings = nn.ModuleList(nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes)
        self.conv2 = ConvBNAct(mid * (len(kernel_sizes) + 1), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.poolings], dim=1))


class CSPNeXt(nn.Module):
    """CSPNeXt arch P5 with channel attention; returns only the stride-32 map (out_indices=(4,))."""

    def __init__(self, deepen_factor: float, widen_factor: float, expand_ratio: float = 0.5) -> None:
        super().__init__()
        stem_out = int(_P5[0][0] * widen_factor)
        # int(64 * w // 2): mmdet floors the float product before halving; for w=0.375 that is 12.
        stem_mid = int(_P5[0][0] * widen_factor // 2)
        self.stem = nn.Sequential(
            ConvBNAct(3, stem_mid, 3, stride=2),
            ConvBNAct(stem_mid, stem_mid, 3),
            ConvBNAct(stem_mid, stem_out, 3),
        )
        for i, (in_ch, out_ch, n, add_identity, use_spp) in enumerate(_P5, start=1):
            in_ch, out_ch = int(in_ch * widen_factor), int(out_ch * widen_factor)
            # Python's round() (banker's rounding) is what mmdet uses; 3 * 0.167 = 0.501 -> 1.
            num_blocks = max(round(n * deepen_factor), 1)
            layers: list[nn.Module] = [ConvBNAct(in_ch, out_ch, 3, stride=2)]
            if use_spp:
                layers.append(SPPBottleneck(out_ch))
            layers.append(CSPLayer(out_ch, num_blocks, add_identity, expand_ratio))
            self.add_module(f"stage{i}", nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.stage1(x)
        x = self.stage2(x)
        x = self.stage3(x)
        return self.stage4(x)


# ---------------------------------------------------------------------------------------------------
# Head
# ---------------------------------------------------------------------------------------------------


class ScaleNorm(nn.Module):
    """x / (||x||_2 * dim**-0.5), clamped, times one learned scalar ``g`` (mmpose's, not LayerNorm).

    The clamp applies to the *scaled* norm, as in mmpose; clamping before scaling differs for tiny x.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = dim**-0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, ord=2, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class Scale(nn.Module):
    """Learned per-channel scale on the GAU's residual branch (``res_scale.scale`` in checkpoints)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class RTMCCBlock(nn.Module):
    """Gated attention unit (self-attention, one head) over the K keypoint tokens.

    uv = SiLU(Linear(ScaleNorm(x))) splits into u (gate), v (values) and a shared base of width s;
    q and k are two per-channel affine maps of that base (gamma/beta rows 0 and 1). The attention
    kernel is relu(q k^T / sqrt(s))^2 with no softmax and no division by the token count.
    Output is res_scale * x + o(u * (kernel @ v)).
    """

    def __init__(self, dims: int, expansion_factor: int = 2, s: int = 128, eps: float = 1e-5) -> None:
        super().__init__()
        self.s = s
        self.e = int(dims * expansion_factor)
        # Registration order (o before uv) only matters for state_dict key order, kept equal to mmpose's.
        self.o = nn.Linear(self.e, dims, bias=False)
        self.uv = nn.Linear(dims, 2 * self.e + s, bias=False)
        self.gamma = nn.Parameter(torch.ones(2, s))
        self.beta = nn.Parameter(torch.zeros(2, s))
        self.ln = ScaleNorm(dims, eps=eps)
        self.act_fn = nn.SiLU(inplace=True)
        # in_token_dims == out_token_dims in RTMCCHead, so mmpose always takes the shortcut path.
        self.res_scale = Scale(dims)
        self.sqrt_s = math.sqrt(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        uv = self.act_fn(self.uv(self.ln(x)))
        # Slices rather than torch.split/unbind: onnx2tf turns an uneven 3-D Split into a Flex op that
        # plain TFLite runtimes cannot run.
        u, v, base = uv[..., : self.e], uv[..., self.e : 2 * self.e], uv[..., 2 * self.e :]
        q = base * self.gamma[0] + self.beta[0]
        k = base * self.gamma[1] + self.beta[1]
        # Scaling q (Kxs) rather than qk (KxK) is the same maths, and keeps a constant-divided KxK tensor out
        # of the exported graph: onnx2tf's layout guessing trips over square shapes with a constant operand.
        qk = torch.matmul(q * (1.0 / self.sqrt_s), k.transpose(1, 2))
        kernel = torch.square(F.relu(qk))
        out = self.o(u * torch.matmul(kernel, v))
        return self.res_scale(x) + out


class RTMCCHead(nn.Module):
    """Large-kernel conv to K maps, flatten, ScaleNorm + Linear to tokens, GAU, then SimCC classifiers."""

    def __init__(
        self,
        in_channels: int,
        num_keypoints: int,
        input_size: tuple[int, int],
        featuremap_size: tuple[int, int],
        simcc_split_ratio: float = 2.0,
        final_layer_kernel_size: int = 7,
        hidden_dims: int = 256,
        s: int = 128,
        expansion_factor: int = 2,
    ) -> None:
        super().__init__()
        flatten_dims = featuremap_size[0] * featuremap_size[1]
        self.num_keypoints = num_keypoints
        self.flatten_dims = flatten_dims
        self.final_layer = nn.Conv2d(
            in_channels, num_keypoints, final_layer_kernel_size, padding=final_layer_kernel_size // 2
        )
        self.mlp = nn.Sequential(ScaleNorm(flatten_dims), nn.Linear(flatten_dims, hidden_dims, bias=False))
        self.gau = RTMCCBlock(hidden_dims, expansion_factor=expansion_factor, s=s)
        # input_size is (w, h): x bins follow the width, y bins the height.
        self.cls_x = nn.Linear(hidden_dims, int(input_size[0] * simcc_split_ratio), bias=False)
        self.cls_y = nn.Linear(hidden_dims, int(input_size[1] * simcc_split_ratio), bias=False)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # B, K, h, w -> B, K, h*w (row-major, as torch.flatten). Fixed sizes instead of flatten() keep the
        # ONNX graph to one Reshape with a constant shape, not a Shape/Slice/Concat chain.
        x = self.final_layer(feats).reshape(-1, self.num_keypoints, self.flatten_dims)
        x = self.gau(self.mlp(x))
        return self.cls_x(x), self.cls_y(x)


class RTMPose(nn.Module):
    """Top-down RTMPose: normalized Nx3xHxW crop -> (simcc_x NxKx(W*r), simcc_y NxKx(H*r))."""

    def __init__(self, variant: str = "t", num_keypoints: int = 17, input_size: tuple[int, int] = (192, 256)) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown RTMPose variant {variant!r}; expected one of {', '.join(VARIANTS)}")
        w, h = input_size
        if w % 32 or h % 32:
            raise ValueError(f"RTMPose input size must be a multiple of 32 on both sides, got {w}x{h} (w x h)")
        cfg = VARIANTS[variant]
        self.variant = variant
        self.input_size = (w, h)
        self.backbone = CSPNeXt(cfg.deepen_factor, cfg.widen_factor)
        self.head = RTMCCHead(cfg.out_channels, num_keypoints, (w, h), (w // 32, h // 32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(x))


def build_rtmpose(variant: str = "t", num_keypoints: int = 17, input_size: tuple[int, int] = (192, 256)) -> RTMPose:
    """An untrained RTMPose-``variant`` ("t", "s" or "m"); ``input_size`` is (width, height).

    Load weights with ``model.load_state_dict(load_rtmpose_state_dict(path))`` and call ``eval()``.
    """
    return RTMPose(variant, num_keypoints, input_size)
