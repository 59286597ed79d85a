"""The network: a global LSTM encoder with a direct multi-horizon quantile head."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# Scales below one unit per day would blow tiny slow-mover values up to the size of fast movers.
MINIMUM_SCALE = 1.0


class LSTMQuantileNetwork(nn.Module):
    def __init__(
        self,
        n_series: int,
        n_covariates: int,
        horizon: int,
        n_quantiles: int,
        hidden_size: int,
        num_layers: int,
        embedding_dim: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.horizon = horizon
        self.n_quantiles = n_quantiles
        self.series_embedding = nn.Embedding(n_series, embedding_dim)
        # inputs per step: scaled target, observed flag, covariates, series embedding
        self.encoder = nn.LSTM(
            input_size=2 + n_covariates + embedding_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Sequential(
            nn.Linear(hidden_size + horizon * n_covariates + embedding_dim, hidden_size * 2),
            nn.ReLU(),
            nn.Linear(hidden_size * 2, horizon * n_quantiles),
        )

    @staticmethod
    def series_scale(past_target: torch.Tensor, past_observed: torch.Tensor) -> torch.Tensor:
        observed_total = (past_target * past_observed).sum(dim=1)  # [batch]
        observed_days = past_observed.sum(dim=1).clamp(min=1.0)  # [batch]
        return (observed_total / observed_days).clamp(min=MINIMUM_SCALE)  # [batch]

    def forward(
        self,
        past_target: torch.Tensor,  # [batch, context]
        past_observed: torch.Tensor,  # [batch, context]
        past_covariates: torch.Tensor,  # [batch, context, covariates]
        future_covariates: torch.Tensor,  # [batch, horizon, covariates]
        series_index: torch.Tensor,  # [batch]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return scaled quantiles [batch, horizon, quantiles] and the scale [batch] that maps them to units."""
        scale = self.series_scale(past_target, past_observed)  # [batch]
        embedding = self.series_embedding(series_index)  # [batch, embedding]
        context = past_target.shape[1]
        encoder_input = torch.cat(
            [
                (past_target / scale[:, None]).unsqueeze(-1),  # [batch, context, 1]
                past_observed.unsqueeze(-1),  # [batch, context, 1]
                past_covariates,  # [batch, context, covariates]
                embedding.unsqueeze(1).expand(-1, context, -1),  # [batch, context, embedding]
            ],
            dim=-1,
        )
        _, (hidden, _) = self.encoder(encoder_input)  # hidden: [layers, batch, hidden]
        summary = torch.cat([hidden[-1], future_covariates.flatten(1), embedding], dim=-1)
        raw = self.head(summary).view(-1, self.horizon, self.n_quantiles)  # [batch, horizon, quantiles]
        # Cumulative positive steps keep the quantiles from crossing.
        lowest = raw[..., :1]
        steps = F.softplus(raw[..., 1:])
        scaled_quantiles = torch.cat([lowest, lowest + steps.cumsum(dim=-1)], dim=-1)
        return scaled_quantiles, scale


def pinball_loss(
    scaled_quantiles: torch.Tensor,  # [batch, horizon, quantiles]
    scaled_target: torch.Tensor,  # [batch, horizon]
    mask: torch.Tensor,  # [batch, horizon]; 0 where the target is missing or censored by a stockout
    quantile_levels: torch.Tensor,  # [quantiles]
) -> torch.Tensor:
    error = scaled_target.unsqueeze(-1) - scaled_quantiles  # [batch, horizon, quantiles]
    loss = torch.maximum(quantile_levels * error, (quantile_levels - 1) * error).mean(dim=-1)  # [batch, horizon]
    return (loss * mask).sum() / mask.sum().clamp(min=1.0)
