"""Training and validation steps around :class:`LSTMQuantileNetwork`."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from models.lstm.module import LSTMQuantileNetwork, pinball_loss


class LSTMQuantileLightningModule(pl.LightningModule):
    def __init__(self, network_kwargs: dict, quantiles: list[float], learning_rate: float) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.network = LSTMQuantileNetwork(**network_kwargs)
        self.register_buffer("quantile_levels", torch.tensor(quantiles, dtype=torch.float32))
        self.learning_rate = learning_rate

    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        scaled_quantiles, scale = self.network(
            batch["past_target"],
            batch["past_observed"],
            batch["past_covariates"],
            batch["future_covariates"],
            batch["series_index"],
        )
        scaled_target = batch["future_target"] / scale[:, None]
        return pinball_loss(scaled_quantiles, scaled_target, batch["future_mask"], self.quantile_levels)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch), on_epoch=True, prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)
