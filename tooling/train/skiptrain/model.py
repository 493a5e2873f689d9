"""A Llama-architecture decoder whose forward pass is exactly what skipgen's converter and engine compute.

Layer skipping is expressed as a mask ``run[layer, position]``: a position that does not run a
layer keeps its hidden state (a skipped layer is the identity), while the positions that do run it
attend to every earlier position's keys and values at that layer, computed from whatever hidden
state that position holds there. That is what the engine does when a prompt runs at full depth and
generated tokens run a policy's layers, so one forward pass with a mask trains (or scores) a whole
sequence the way skipgen will run it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LlamaConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_hf(self, bos_token_id: int | None, eos_token_id: int | None) -> dict:
        """config.json as transformers' LlamaConfig writes it (tied embeddings, no biases)."""
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            **asdict(self),
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "tie_word_embeddings": True,
            "attention_bias": False,
            "mlp_bias": False,
            "rope_scaling": None,
            "bos_token_id": bos_token_id,
            "eos_token_id": eos_token_id,
            "torch_dtype": "float32",
        }


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rope_tables(config: LlamaConfig, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of transformers' default RoPE, computed in float32 as it does."""
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    freqs = torch.outer(torch.arange(length, dtype=torch.int64).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        h = config.hidden_size
        self.q_proj = nn.Linear(h, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, h, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, causal: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        groups = self.heads // self.kv_heads
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(causal, float("-inf"))
        out = F.softmax(scores, dim=-1) @ v
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))


class Mlp(nn.Module):
    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = Mlp(config)

    def forward(self, x, cos, sin, causal):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, causal)
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaModel(nn.Module):
    """The `model.` prefix of transformers' LlamaForCausalLM, with the tied LM head."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        cos, sin = rope_tables(config, config.max_position_embeddings)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final norm and the tied LM head: the engine's head graph, also Early Exit's probe."""
        return self.norm(hidden) @ self.embed_tokens.weight.t()

    def forward(self, ids: torch.Tensor, run: torch.Tensor | None = None, probe_layers: list[int] | None = None):
        """Logits ``[batch, time, vocab]``, and the head's logits after each probe layer.

        ``run`` is ``[layers, time]`` (one mask for the batch) or ``[batch, layers, time]``;
        ``True`` where a position runs a layer. ``None`` runs every layer.
        """
        t = ids.shape[1]
        cos = self.cos[:t].to(self.embed_tokens.weight.dtype)
        sin = self.sin[:t].to(self.embed_tokens.weight.dtype)
        causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).triu(1)
        hidden = self.embed_tokens(ids)
        probes = {}
        wanted = set(probe_layers or [])
        for index, layer in enumerate(self.layers):
            out = layer(hidden, cos, sin, causal)
            if run is None:
                hidden = out
            else:
                keep = run[index] if run.dim() == 2 else run[:, index]
                hidden = torch.where(keep.unsqueeze(-1), out, hidden)
            if index in wanted:
                probes[index] = self.head(hidden)
        return self.head(hidden), probes

    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors by Hugging Face name (tied head: no lm_head.weight)."""
        return {f"model.{name}": tensor.detach().contiguous() for name, tensor in self.state_dict().items()}


def init_weights(model: LlamaModel, seed: int, std: float = 0.02) -> None:
    """GPT-2 style initialisation, residual projections scaled by depth."""
    generator = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight") or "layernorm" in name:
            nn.init.ones_(p)
            continue
        scale = std / math.sqrt(2 * model.config.num_hidden_layers) if name.endswith(("o_proj.weight", "down_proj.weight")) else std
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=generator) * scale)
