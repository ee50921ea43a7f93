"""A tiny BERT built from a config (nothing downloaded) and a tiny synthetic dataset, for CPU tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

VOCAB = 32
SEQ = 8


class Synthetic(torch.utils.data.Dataset):
    """`n` sequences whose label is whether token 1 occurs in them: learnable, deterministic."""

    def __init__(self, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(2, VOCAB, (n, SEQ), generator=g)
        self.ids[: n // 2, 3] = 1
        self.labels = (self.ids == 1).any(dim=1).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(SEQ, dtype=torch.long), "labels": self.labels[i]}


def tiny_bert() -> Any:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=SEQ, num_labels=2,
    )  # fmt: skip
    return BertForSequenceClassification(config)


def training_args(output_dir: Path, **overrides: Any) -> Any:
    from transformers import TrainingArguments

    values: dict[str, Any] = dict(
        output_dir=str(output_dir),
        max_steps=6,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        learning_rate=1e-3,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=3,
        save_strategy="steps",
        save_steps=3,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    values.update(overrides)
    return TrainingArguments(**values)


def trainer(output_dir: Path, callbacks: list[Any] | None = None, **overrides: Any) -> Any:
    from transformers import Trainer

    return Trainer(
        model=tiny_bert(),
        args=training_args(output_dir, **overrides),
        train_dataset=Synthetic(32),
        eval_dataset=Synthetic(16, seed=1),
        callbacks=callbacks,
    )
