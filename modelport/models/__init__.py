"""Where models come from: ``--model SPEC`` names one; a ModelSource builds it.

SPEC is a built-in name (``mlp``), ``path/to/file.py:callable`` or
``package.module:callable``. The callable takes no arguments and returns an
``nn.Module``, or a pair ``(module, example_inputs)``. It is called once to build the
model, and again whenever a fresh instance of the architecture is needed (the
state_dict and safetensors stages load the saved weights into such an instance).
"""

from __future__ import annotations

from typing import Any

from modelport.models.source import BUILTIN, ModelSource, resolve_model, split_result

__all__ = ["BUILTIN", "MLP", "ModelSource", "mlp_example", "resolve_model", "split_result"]


def __getattr__(name: str) -> Any:
    # The built-in model defines an nn.Module (torch): loaded on first use, so that verify's ONNX replay,
    # which reads only BUILTIN's names, imports no torch.
    if name in ("MLP", "mlp_example"):
        from modelport.models import builtin

        return getattr(builtin, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
