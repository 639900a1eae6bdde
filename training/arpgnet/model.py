"""ARPGNet: appearance branch, relation branch and parallel graph attention fusion.

The network is split the way a streaming pipeline runs it: a FrameEncoder that
sees one aligned face and yields its appearance and relation embeddings, and a
WindowHead that sees T of those pairs and yields class logits. ARPGNet is the
two composed, which is what the paper trains end to end.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig

NEG = -1e4  # additive mask value: large enough to zero a softmax weight, finite for fp16 engines


# ---------------------------------------------------------------- appearance


class IBasicBlock(nn.Module):
    """InsightFace IResNet block: BN-conv-BN-PReLU-conv(stride)-BN plus shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return y + (x if self.down is None else self.down(x))


class IResNet(nn.Module):
    """Backbone whose stage-3 output is exposed for the relation branch (shared, not copied)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.widths
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_channels, w[0], 3, 1, 1, bias=False), nn.BatchNorm2d(w[0]), nn.PReLU(w[0])
        )
        stages = []
        cin = w[0]
        for width, n in zip(w, cfg.blocks):
            blocks = [IBasicBlock(cin, width, 2)] + [IBasicBlock(width, width, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = width
        self.stage1, self.stage2, self.stage3, self.stage4 = stages
        side = cfg.input_size // 16
        self.bn = nn.BatchNorm2d(w[3], eps=1e-5)
        self.dropout = nn.Dropout(cfg.dropout)
        # "the first fully connected layer after the backbone" gives the appearance embedding
        self.fc = nn.Linear(w[3] * side * side, cfg.app_dim)
        self.features = nn.BatchNorm1d(cfg.app_dim, eps=1e-5)
        self.stage3_side = cfg.input_size // 8

    def trunk(self, x: Tensor) -> Tensor:
        """Stem and stages 1-3: the feature map the relation branch reads."""
        return self.stage3(self.stage2(self.stage1(self.stem(x))))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s3 = self.trunk(x)
        y = self.dropout(self.bn(self.stage4(s3)))
        app = self.features(self.fc(torch.flatten(y, 1)))
        return app, s3


# ---------------------------------------------------------------- graphs


def region_adjacency(grid: int, symmetry: bool) -> Tensor:
    """Facial-region graph on a grid x grid split: self-loops, 8-neighbour spatial
    adjacency and left-right symmetry (column c <-> grid-1-c in the same row)."""
    n = grid * grid
    adj = torch.zeros(n, n, dtype=torch.bool)
    for r in range(grid):
        for c in range(grid):
            i = r * grid + c
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < grid and 0 <= cc < grid:
                        adj[i, rr * grid + cc] = True
            if symmetry:
                adj[i, r * grid + (grid - 1 - c)] = True
    return adj


def fusion_adjacency(t: int, trs: int | None, mode: str) -> Tensor:
    """The parallel fusion graph over 2T nodes (appearance 0..T-1, relation T..2T-1):
    within each sequence frames |t-s| <= TRS are linked (all of them when TRS is off),
    and the two nodes of one frame are linked across the sequences."""
    idx = torch.arange(t)
    dist = (idx[:, None] - idx[None, :]).abs()
    band = torch.ones(t, t, dtype=torch.bool) if trs is None else dist <= trs
    if mode in ("appearance", "relation"):
        return band
    same = dist == 0
    top = torch.cat([band, same], dim=1)
    bottom = torch.cat([same, band], dim=1)
    return torch.cat([top, bottom], dim=0)


def adaptive_pool_matrix(side: int, grid: int) -> Tensor:
    """[grid*grid, side*side] averaging weights equal to adaptive_avg_pool2d; a plain
    MatMul exports to every ONNX consumer, non-divisible sizes included."""
    m = torch.zeros(grid * grid, side * side)
    for gr in range(grid):
        r0, r1 = (gr * side) // grid, math.ceil((gr + 1) * side / grid)
        for gc in range(grid):
            c0, c1 = (gc * side) // grid, math.ceil((gc + 1) * side / grid)
            cells = [r * side + c for r in range(r0, r1) for c in range(c0, c1)]
            m[gr * grid + gc, cells] = 1.0 / len(cells)
    return m


class GraphAttention(nn.Module):
    """Multi-head graph attention (GAT scoring) with the attention masked to graph
    neighbours, a residual and a small feed-forward block."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        assert dim % heads == 0
        self.heads, self.dh = heads, dim // heads
        self.proj = nn.Linear(dim, dim, bias=False)
        self.att_src = nn.Parameter(torch.randn(heads, self.dh) * 0.1)
        self.att_dst = nn.Parameter(torch.randn(heads, self.dh) * 0.1)
        self.out = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        b, n, d = x.shape
        h = self.proj(x).view(b, n, self.heads, self.dh)
        src = (h * self.att_src).sum(-1)  # [B, N, H]
        dst = (h * self.att_dst).sum(-1)
        e = F.leaky_relu(dst.unsqueeze(2) + src.unsqueeze(1), 0.2)  # [B, Nq, Nk, H]
        a = torch.softmax(e.permute(0, 3, 1, 2) + bias, dim=-1)  # [B, H, Nq, Nk]
        agg = torch.matmul(self.drop(a), h.permute(0, 2, 1, 3))  # [B, H, N, dh]
        agg = agg.permute(0, 2, 1, 3).reshape(b, n, d)
        x = self.norm1(x + self.drop(self.out(F.elu(agg))))
        return self.norm2(x + self.drop(self.ffn(x)))


# ---------------------------------------------------------------- relation


class RelationBranch(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        side, c3 = cfg.input_size // 8, cfg.widths[2]
        n = cfg.grid * cfg.grid
        self.register_buffer("pool", adaptive_pool_matrix(side, cfg.grid), persistent=False)
        adj = region_adjacency(cfg.grid, cfg.symmetry_edges)
        self.register_buffer("bias", torch.where(adj, 0.0, NEG), persistent=False)
        self.embed = nn.Linear(c3, cfg.rel_dim)
        self.region = nn.Parameter(torch.zeros(n, cfg.rel_dim))  # which part of the face a node is
        nn.init.trunc_normal_(self.region, std=0.02)
        self.layers = nn.ModuleList(
            GraphAttention(cfg.rel_dim, cfg.rel_heads, cfg.dropout) for _ in range(cfg.rel_layers)
        )
        self.readout = nn.Sequential(nn.Linear(cfg.rel_dim, cfg.rel_dim), nn.BatchNorm1d(cfg.rel_dim))

    def forward(self, s3: Tensor) -> Tensor:
        nodes = torch.matmul(self.pool, s3.flatten(2).transpose(1, 2))  # [B, P*P, C3]
        x = self.embed(nodes) + self.region
        for layer in self.layers:
            x = layer(x, self.bias)
        return self.readout(x.mean(1))


class FrameEncoder(nn.Module):
    """Aligned face [N, C, H, W] -> appearance [N, Da], relation [N, Dr]; runs once per face per frame."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = IResNet(cfg)
        self.relation = RelationBranch(cfg)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        app, s3 = self.backbone(x)
        return app, self.relation(s3)


# ---------------------------------------------------------------- fusion


def sinusoid(t: int, dim: int) -> Tensor:
    pos = torch.arange(t, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(t, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


class WindowHead(nn.Module):
    """T frame embeddings + validity mask -> logits; runs once per emitted window.

    The fusion graph's band and the temporal position encoding are buffers for the
    configured T, so the exported graph holds no shape-dependent mask building."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, t = cfg.fusion_dim, cfg.window
        self.app_proj = nn.Linear(cfg.app_dim, d)
        self.rel_proj = nn.Linear(cfg.rel_dim, d)
        if cfg.mode == "concat":
            self.concat = nn.Sequential(nn.Linear(cfg.app_dim + cfg.rel_dim, d), nn.GELU(), nn.LayerNorm(d))
        else:
            adj = fusion_adjacency(t, cfg.trs if cfg.use_trs else None, cfg.mode)
            self.register_buffer("band", torch.where(adj, 0.0, NEG), persistent=False)
            self.register_buffer("pe", sinusoid(t, d), persistent=False)
            self.kind = nn.Parameter(torch.zeros(2, d))  # appearance vs relation node
            self.layers = nn.ModuleList(
                GraphAttention(d, cfg.fusion_heads, cfg.dropout) for _ in range(cfg.fusion_layers)
            )
        if cfg.pooling == "recency":
            # a learned score per node plus a learned bias per window position: the head
            # can weigh what the face shows now over the frames that led up to it
            self.pool_score = nn.Linear(d, 1)
            self.pool_pos = nn.Parameter(torch.zeros(t))
        self.classifier = nn.Sequential(
            nn.Linear(d, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, cfg.num_classes)
        )

    def forward(self, app: Tensor, rel: Tensor, valid: Tensor) -> Tensor:
        """app [N,T,Da], rel [N,T,Dr], valid [N,T] (1 = a real frame, 0 = not filled yet)."""
        mode = self.cfg.mode
        if mode == "concat":
            x = self.concat(torch.cat([app, rel], dim=-1))
            keep = valid
        else:
            seqs = []
            if mode in ("fusion", "appearance"):
                seqs.append(self.app_proj(app) + self.pe + self.kind[0])
            if mode in ("fusion", "relation"):
                seqs.append(self.rel_proj(rel) + self.pe + self.kind[1])
            x = torch.cat(seqs, dim=1)
            keep = valid.repeat(1, len(seqs))
            bias = self.band + (1.0 - keep)[:, None, None, :] * NEG  # [N, 1, 2T, 2T]
            for layer in self.layers:
                x = layer(x, bias)
        if self.cfg.pooling == "recency":
            reps = x.shape[1] // self.cfg.window
            score = self.pool_score(x).squeeze(-1) + self.pool_pos.repeat(reps) + (1.0 - keep) * NEG
            pooled = (torch.softmax(score, dim=1).unsqueeze(-1) * x).sum(1)
        else:
            w = keep.unsqueeze(-1)
            pooled = (x * w).sum(1) / w.sum(1).clamp(min=1.0)
        return self.classifier(pooled)


class ARPGNet(nn.Module):
    """Clips [N, T, C, H, W] + valid [N, T] -> logits [N, classes]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = FrameEncoder(cfg)
        self.head = WindowHead(cfg)

    def forward(self, clips: Tensor, valid: Tensor) -> Tensor:
        n, t = clips.shape[:2]
        app, rel = self.encoder(clips.flatten(0, 1))
        return self.head(app.view(n, t, -1), rel.view(n, t, -1), valid)
