"""Facts about torch models, datasets and optimizers, as flat parameter dicts.

Every function here is called with an object of an already imported torch (the caller checked), reads only
metadata (shapes, dtypes, counts) and never iterates a large dataset: class counts are taken from a
`targets`/`labels` attribute when the dataset has one, never by loading samples.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

MAX_CLASSES = 100  # class counts of a dataset with more distinct labels are left out
MAX_CHILDREN = 20  # top-level modules listed in a model summary


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_model(model: Any) -> dict[str, Any]:
    """Parameter counts, size in bytes, dtypes, device(s) and a top-level module summary of an `nn.Module`."""
    params = list(model.parameters())
    buffers = list(model.buffers())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    size = sum(t.numel() * t.element_size() for t in params + buffers)
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in params})
    devices = sorted({str(t.device) for t in params + buffers})
    children = list(model.named_children())
    info: dict[str, Any] = {
        "class": _qualname(model),
        "parameters": total,
        "trainable_parameters": trainable,
        "size_bytes": size,
        "dtypes": ",".join(dtypes),
        "device": ",".join(devices) if devices else "cpu",
        "modules": len(children),
    }
    for name, child in children[:MAX_CHILDREN]:
        count = sum(p.numel() for p in child.parameters())
        info[f"layers/{name}"] = f"{type(child).__name__} ({count} params)"
    return info


def _shape_dtype(value: Any) -> tuple[str, str] | None:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None or dtype is None:
        return None
    return "x".join(str(int(d)) for d in shape) or "scalar", str(dtype).removeprefix("torch.")


def describe_sample(sample: Any, prefix: str = "sample") -> dict[str, Any]:
    """Shapes and dtypes of one sample (a tensor, array, scalar, or a tuple/list/dict of them)."""
    info: dict[str, Any] = {}
    if isinstance(sample, dict):
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in list(sample.items())[:10]]
    elif isinstance(sample, (tuple, list)):
        items = [(str(i), v) for i, v in enumerate(sample[:10])]
    else:
        items = [("", sample)]
    for key, value in items:
        name = f"{prefix}/{key}" if key else prefix
        found = _shape_dtype(value)
        if found is not None:
            info[f"{name}/shape"], info[f"{name}/dtype"] = found
        elif isinstance(value, (bool, int, float, str)):
            info[f"{name}/type"] = type(value).__name__
    return info


def _class_counts(dataset: Any) -> dict[str, Any]:
    labels = None
    for attr in ("targets", "labels"):
        labels = getattr(dataset, attr, None)
        if labels is not None:
            break
    if labels is None:
        return {}
    if hasattr(labels, "tolist"):
        labels = labels.tolist()
    try:
        counts = Counter(labels)
    except TypeError:  # unhashable labels (multi-label lists): no cheap count
        return {}
    if len(counts) > MAX_CLASSES:
        return {"classes": len(counts)}
    info: dict[str, Any] = {"classes": len(counts)}
    for label, count in sorted(counts.items(), key=lambda kv: str(kv[0])):
        info[f"class_counts/{label}"] = count
    return info


def describe_dataset(dataset: Any) -> dict[str, Any]:
    """Length, one sample's shapes and dtypes, class counts when the dataset lists its labels.

    A `DataLoader` is described through its dataset, plus its batch size. An iterable dataset has no length
    and no indexable sample: only its class is recorded.
    """
    info: dict[str, Any] = {"class": _qualname(dataset)}
    loader_dataset = getattr(dataset, "dataset", None)
    if loader_dataset is not None and hasattr(dataset, "batch_size") and hasattr(dataset, "sampler"):
        info["batch_size"] = dataset.batch_size
        info["dataset_class"] = _qualname(loader_dataset)
        dataset = loader_dataset
    try:
        length = len(dataset)
    except TypeError:
        return info
    info["size"] = length
    if length > 0 and hasattr(dataset, "__getitem__"):
        try:
            info.update(describe_sample(dataset[0]))
        except Exception:  # a dataset whose first item cannot be read cheaply: length is still a fact
            pass
    info.update(_class_counts(dataset))
    return info


def optimizer_params(optimizer: Any) -> dict[str, Any]:
    """An optimizer's type and its param groups' hyperparameters (lr, momentum, betas, weight decay, ...).

    One group: `lr`, `momentum`, ...; several: `group0/lr`, `group1/lr`, ...
    """
    info: dict[str, Any] = {"type": type(optimizer).__name__}
    groups = list(getattr(optimizer, "param_groups", []))
    for i, group in enumerate(groups):
        prefix = "" if len(groups) == 1 else f"group{i}/"
        for key, value in group.items():
            if key == "params" or value is None:
                continue
            if isinstance(value, (bool, int, float, str)):
                info[f"{prefix}{key}"] = value
            elif isinstance(value, (tuple, list)) and all(isinstance(v, (int, float)) for v in value):
                info[f"{prefix}{key}"] = list(value)
            elif hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # a tensor lr (capturable)
                info[f"{prefix}{key}"] = float(value.item())
    return info


_SCHEDULER_STATE = {"last_epoch", "verbose", "base_lrs", "last_lr", "optimizer"}


def scheduler_params(scheduler: Any) -> dict[str, Any]:
    """An LR scheduler's type and its settings (step_size, gamma, T_max, ...), without its running state."""
    info: dict[str, Any] = {"type": type(scheduler).__name__}
    for key, value in vars(scheduler).items():
        if key.startswith("_") or key in _SCHEDULER_STATE:
            continue
        if isinstance(value, (bool, int, float, str)):
            info[key] = value
    return info
