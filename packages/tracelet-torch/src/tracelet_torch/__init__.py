"""PyTorch for Tracelet: TensorBoard capture, a Lightning logger, automagic capture of models, data and optimizers.

`import tracelet_torch` imports neither torch nor tensorboard nor lightning: the framework plugins
(`tracelet_torch.tensorboard`, `tracelet_torch.framework`, `tracelet_torch.lightning_capture`) patch those
libraries only once the training script has imported them. `tracelet_torch.lightning` (the `TraceletLogger`)
imports Lightning, as any Lightning logger does.
"""

from __future__ import annotations

__version__ = "0.1.0"
