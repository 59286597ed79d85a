"""The network: a global LSTM encoder with an MQ-RNN style decoder (Wen et al., 2017).

The encoder reads the scaled past with its rolling means, covariates and the series' learned
id embeddings. A global head turns its last state into one context per horizon period; a small local
head, shared by all periods, reads that context with the period's known covariates and the target's
seasonal lags, and emits the period's mean and quantiles.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# Scales below one unit per day would blow tiny slow-mover values up to the size of fast movers.
MINIMUM_SCALE = 1.0
# The daily data's: a week and four weeks (replenish.frequency.Frequency gives each frequency's).
DAILY_ROLLING_WINDOWS = (7, 28)
DAILY_SEASONAL_LAGS = (7, 28)
HORIZON_CONTEXT_SIZE = 16


def _observed_mean(values: torch.Tensor, observed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the observed values of each row, and how many there are: [batch], [batch]."""
    count = observed.sum(dim=1)  # [batch]
    return (values * observed).sum(dim=1) / count.clamp(min=1.0), count


def series_scale(past_target: torch.Tensor, past_observed: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """The series' level: the mean of its observed values over the last ``window`` periods of the context
    (the whole context when ``window`` is None, or when none of those periods is observed): [batch]."""
    level, _ = _observed_mean(past_target, past_observed)  # [batch]
    if window is not None:
        recent, recent_count = _observed_mean(past_target[:, -window:], past_observed[:, -window:])  # [batch]
        level = torch.where(recent_count > 0, recent, level)
    return level.clamp(min=MINIMUM_SCALE)


def rolling_means(values: torch.Tensor, observed: torch.Tensor, windows: tuple[int, ...]) -> torch.Tensor:
    """Mean of the observed values over the last ``w`` days up to each day: [batch, time, len(windows)]."""
    padded_values = F.pad((values * observed).cumsum(dim=1), (1, 0))  # [batch, time + 1]
    padded_counts = F.pad(observed.cumsum(dim=1), (1, 0))  # [batch, time + 1]
    time = values.shape[1]
    means = []
    for window in windows:
        start = (torch.arange(1, time + 1, device=values.device) - window).clamp(min=0)  # [time]
        total = padded_values[:, 1:] - padded_values[:, start]  # [batch, time]
        count = padded_counts[:, 1:] - padded_counts[:, start]  # [batch, time]
        means.append(total / count.clamp(min=1.0))
    return torch.stack(means, dim=-1)


def seasonal_lags(values: torch.Tensor, observed: torch.Tensor, horizon: int, lags: tuple[int, ...]) -> torch.Tensor:
    """For each horizon day, the value (and whether it was observed) ``lag`` days earlier, repeating
    the last ``lag`` days of the context beyond ``lag``: [batch, horizon, 2·len(lags)]."""
    context = values.shape[1]
    days = torch.arange(horizon, device=values.device)  # [horizon]
    features = []
    for lag in lags:
        position = context - lag + days % lag  # [horizon]
        features += [values[:, position], observed[:, position]]  # each [batch, horizon]
    return torch.stack(features, dim=-1)


class LSTMQuantileNetwork(nn.Module):
    def __init__(
        self,
        category_cardinalities: list[int],
        n_covariates: int,
        horizon: int,
        n_quantiles: int,
        hidden_size: int,
        num_layers: int,
        embedding_dim: int,
        dropout: float,
        rolling_windows: tuple[int, ...] = DAILY_ROLLING_WINDOWS,
        lags: tuple[int, ...] = DAILY_SEASONAL_LAGS,  # every horizon period's value at a lag lies in the context
        scale_window: int | None = None,  # the periods the series' level is averaged over; None: the context
    ) -> None:
        super().__init__()
        self.horizon = horizon
        self.n_quantiles = n_quantiles
        self.rolling_windows = tuple(rolling_windows)
        self.lags = tuple(lags)
        self.scale_window = scale_window
        # Index 0 of every table is "unseen", so a new item still gets its store, dept and category.
        self.embeddings = nn.ModuleList(
            nn.Embedding(cardinality, embedding_dim) for cardinality in category_cardinalities
        )
        embedded = embedding_dim * len(category_cardinalities)
        # inputs per step: scaled target, observed flag, rolling means, covariates, id embeddings
        self.encoder = nn.LSTM(
            input_size=2 + len(self.rolling_windows) + n_covariates + embedded,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.global_head = nn.Sequential(
            nn.Linear(hidden_size + embedded, hidden_size * 2),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size * 2, horizon * HORIZON_CONTEXT_SIZE),
        )
        self.local_head = nn.Sequential(
            nn.Linear(HORIZON_CONTEXT_SIZE + n_covariates + 2 * len(self.lags), hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, 1 + n_quantiles),
        )

    def forward(
        self,
        past_target: torch.Tensor,  # [batch, context]
        past_observed: torch.Tensor,  # [batch, context]
        past_covariates: torch.Tensor,  # [batch, context, covariates]
        future_covariates: torch.Tensor,  # [batch, horizon, covariates]
        categories: torch.Tensor,  # [batch, len(category_cardinalities)]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return the scaled mean [batch, horizon], scaled quantiles [batch, horizon, quantiles] and
        the scale [batch] that maps both to units."""
        scale = series_scale(past_target, past_observed, self.scale_window)  # [batch]
        scaled = past_target / scale[:, None]  # [batch, context]
        embedding = torch.cat(
            [table(categories[:, i]) for i, table in enumerate(self.embeddings)], dim=-1
        )  # [batch, embedded]
        context = past_target.shape[1]
        encoder_input = torch.cat(
            [
                scaled.unsqueeze(-1),  # [batch, context, 1]
                past_observed.unsqueeze(-1),  # [batch, context, 1]
                rolling_means(scaled, past_observed, self.rolling_windows),  # [batch, context, windows]
                past_covariates,  # [batch, context, covariates]
                embedding.unsqueeze(1).expand(-1, context, -1),  # [batch, context, embedded]
            ],
            dim=-1,
        )
        _, (hidden, _) = self.encoder(encoder_input)  # hidden: [layers, batch, hidden]
        horizon_context = self.global_head(torch.cat([hidden[-1], embedding], dim=-1))  # [batch, horizon * ctx]
        local_input = torch.cat(
            [
                horizon_context.view(-1, self.horizon, HORIZON_CONTEXT_SIZE),  # [batch, horizon, ctx]
                future_covariates,  # [batch, horizon, covariates]
                seasonal_lags(scaled, past_observed, self.horizon, self.lags),  # [batch, horizon, 2·lags]
            ],
            dim=-1,
        )
        raw = self.local_head(local_input)  # [batch, horizon, 1 + quantiles]
        scaled_mean = F.softplus(raw[..., 0])  # [batch, horizon]
        # Cumulative positive steps keep the quantiles from crossing.
        lowest = raw[..., 1:2]
        steps = F.softplus(raw[..., 2:])
        scaled_quantiles = torch.cat([lowest, lowest + steps.cumsum(dim=-1)], dim=-1)  # [batch, horizon, quantiles]
        return scaled_mean, scaled_quantiles, scale


def pinball_loss(
    scaled_quantiles: torch.Tensor,  # [batch, horizon, quantiles]
    scaled_target: torch.Tensor,  # [batch, horizon]
    mask: torch.Tensor,  # [batch, horizon]; 0 where the target is missing or censored by a stockout
    quantile_levels: torch.Tensor,  # [quantiles]
) -> torch.Tensor:
    error = scaled_target.unsqueeze(-1) - scaled_quantiles  # [batch, horizon, quantiles]
    loss = torch.maximum(quantile_levels * error, (quantile_levels - 1) * error).mean(dim=-1)  # [batch, horizon]
    return (loss * mask).sum() / mask.sum().clamp(min=1.0)


def squared_error_loss(
    scaled_mean: torch.Tensor,  # [batch, horizon]
    scaled_target: torch.Tensor,  # [batch, horizon]
    mask: torch.Tensor,  # [batch, horizon]
) -> torch.Tensor:
    return ((scaled_mean - scaled_target) ** 2 * mask).sum() / mask.sum().clamp(min=1.0)
