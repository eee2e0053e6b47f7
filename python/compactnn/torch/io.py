"""Compressed PyTorch models in one file, with no pickle.

The model file (compactnn.model.file_format) holds the compressed matrices, every other tensor of
the state dict, and the module tree as JSON: for each module its type and the constructor
arguments read back from its attributes.  `load` rebuilds the tree only from modules of
`torch.nn` and of this package; a model of any other class is rebuilt by passing `model=`
(its architecture: an instance, or a callable that makes one).  Modules are built on the
meta device and then given the file's tensors, so no dense weight is ever allocated.
"""
from __future__ import annotations

import inspect

import numpy as np
import torch
from torch import nn

from ..matrix.formats import FormatError
from ..model import file_format
from ..model.plan import Plan
from . import layers as L

FRAMEWORK = "torch"
GRAPH_TENSORS = "#graph/"  # the runtime graph's own tensors (export.py), not the model's
_OURS = {cls.__name__: cls for cls in (L.CompressedLinear, L.CompressedConv1d,
                                       L.CompressedConv2d)}
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_SKIPPED_ARGS = {"self", "device", "dtype"}


def save(model: nn.Module, path, *, input_shape=None, example_input=None) -> None:
    """Write a model (compressed or not) to `path` as one file.  `input_shape` (one
    example's shape, without the batch) is recorded for `compactnn bench --model`.

    With `example_input` (a batch of inputs; the model in eval mode), the forward pass is
    captured with torch.export and stored as a graph that compactnn.runtime runs with numpy
    alone, for any batch size; ValueError names an operation the runtime does not run."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"save needs a torch.nn.Module, got {type(model).__name__}")
    graph, extra = None, {}
    if example_input is not None:
        from .export import capture

        graph, extra = capture(model, example_input)
        if input_shape is None:
            input_shape = graph["inputs"][0]["shape"][1:]
    matrices, skip = {}, set()
    for name, mod in model.named_modules():
        if isinstance(mod, L.CompressedModule):
            matrices[name] = mod.matrix
            skip.add(f"{name}._extra_state" if name else "_extra_state")
    tensors = {key: _to_numpy(t) for key, t in model.state_dict().items() if key not in skip}
    meta = dict(framework=FRAMEWORK, root=_describe(model),
                input_shape=None if input_shape is None else [int(s) for s in input_shape])
    if graph is not None:
        meta["graph"] = graph
    file_format.write(path, meta, matrices, {**tensors, **extra})


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


def _describe(mod: nn.Module) -> dict:
    cls = type(mod)
    node = dict(type=f"{cls.__module__}.{cls.__qualname__}", training=mod.training)
    if isinstance(mod, L.CompressedModule):
        node.update(type=f"compactnn.{cls.__name__}", args=mod.config(),
                    plan=None if mod.plan is None else mod.plan.to_json())
        return node
    args = _standard_args(mod)
    if args is not None:
        node.update(type=f"torch.nn.{cls.__name__}", args=args)
    node["children"] = [[name, _describe(child)] for name, child in mod._modules.items()
                        if child is not None]
    return node


def _standard_args(mod: nn.Module) -> dict | None:
    """Constructor arguments of a torch.nn module read back from its attributes, or None
    when the module is not one that can be rebuilt that way."""
    cls = type(mod)
    if getattr(nn, cls.__name__, None) is not cls:
        return None
    if isinstance(mod, _CONTAINERS):
        return {}
    args = {}
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name in _SKIPPED_ARGS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in mod._parameters or p.name in mod._buffers:  # e.g. bias=True/False
            args[p.name] = getattr(mod, p.name) is not None
        elif hasattr(mod, p.name) and _plain(getattr(mod, p.name)):
            v = getattr(mod, p.name)
            args[p.name] = list(v) if isinstance(v, tuple) else v
        elif p.default is p.empty:
            return None
    try:  # what cannot be told from its constructor arguments is not rebuilt from them
        with torch.device("meta"):
            same = cls(**args).extra_repr() == mod.extra_repr()
    except Exception:
        return None
    return args if same else None


def _plain(v) -> bool:
    if isinstance(v, (tuple, list)):
        return all(_plain(i) for i in v)
    return v is None or isinstance(v, (bool, int, float, str))


def load(path, model=None) -> nn.Module:
    """Read a model written by `save`.  A model built only from torch.nn modules (and
    compressed layers) needs nothing else; any other model class needs `model=`: an
    instance of the architecture, or a callable that makes one (called on the meta device,
    so it allocates no weights).  FormatError if the file is not valid."""
    meta, matrices, tensors = file_format.read(path)
    if meta.get("framework") != FRAMEWORK or not isinstance(meta.get("root"), dict):
        raise FormatError(f"{path}: not a compressed PyTorch model file")
    tensors = {k: t for k, t in tensors.items() if not k.startswith(GRAPH_TENSORS)}
    try:
        if model is None:
            root = _build(meta["root"], "", matrices, tensors)
        else:
            root = _fit(_instance(model), meta["root"], matrices, tensors)
        _assign(root, tensors)
    except RecursionError:
        raise FormatError(f"{path}: the module tree is nested too deeply") from None
    except _Bad as e:
        raise FormatError(f"{path}: {e}") from None
    return root


class _Bad(Exception):
    pass


def _instance(model) -> nn.Module:
    if isinstance(model, nn.Module):
        return model
    if callable(model):
        with torch.device("meta"):
            built = model()
        if isinstance(built, nn.Module):
            return built
        raise TypeError(f"model= returned {type(built).__name__}, not a torch.nn.Module")
    raise TypeError(f"model= must be a torch.nn.Module or a callable that makes one, "
                    f"got {type(model).__name__}")


def _build(node, name: str, matrices, tensors) -> nn.Module:
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise _Bad(f"module {name!r} is malformed")
    kind = node["type"]
    if kind.startswith("compactnn."):
        return _compressed(node, name, matrices, tensors)
    cls = getattr(nn, kind[len("torch.nn."):], None) if kind.startswith("torch.nn.") else None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)) or "args" not in node:
        raise ValueError(f"module {name or '(root)'!r} is of class {kind}, which load cannot "
                         "rebuild from the file: pass model= (the architecture: an instance "
                         "or a callable that makes one)")
    args, children = node["args"], node.get("children", [])
    if not isinstance(args, dict) or not _plain(list(args.values())) \
            or not isinstance(children, list):
        raise _Bad(f"module {name!r} is malformed")
    try:
        with torch.device("meta"):
            mod = cls(**args)
    except Exception as e:
        raise _Bad(f"module {name!r} ({kind}) cannot be built from {args}: {e}") from None
    for child in children:
        if not (isinstance(child, list) and len(child) == 2 and isinstance(child[0], str)):
            raise _Bad(f"module {name!r} lists a malformed child")
        key = child[0]
        if not key or "." in key or hasattr(nn.Module, key):
            raise _Bad(f"module {name!r} has a child with the bad name {key!r}")
        mod.add_module(key, _build(child[1], f"{name}.{key}" if name else key, matrices,
                                   tensors))
    mod.train(bool(node.get("training", False)))
    return mod


def _compressed(node, name: str, matrices, tensors) -> nn.Module:
    cls = _OURS.get(node["type"][len("compactnn."):])
    m = matrices.get(name)
    if cls is None or m is None or not isinstance(node.get("args"), dict):
        raise _Bad(f"compressed module {name!r} is malformed or has no matrix")
    try:
        plan = None if node.get("plan") is None else Plan.from_json(node["plan"])
        mod = cls(m, tensors.get(f"{name}.bias" if name else "bias"), plan=plan, **node["args"])
    except (TypeError, ValueError, KeyError) as e:
        raise _Bad(f"compressed module {name!r}: {e}") from None
    mod.train(bool(node.get("training", False)))
    return mod


def _fit(root: nn.Module, tree: dict, matrices, tensors) -> nn.Module:
    """Put the file's compressed modules into a user-given architecture, by name."""
    nodes = dict(_walk(tree, ""))
    for name in matrices:
        node = nodes.get(name)
        if node is None:
            raise _Bad(f"matrix {name!r} belongs to no module of the file's tree")
        try:
            old = root.get_submodule(name)
        except AttributeError:
            raise ValueError(f"model= has no module {name!r}, which the file compresses; "
                             "it is not the file's architecture") from None
        new = _compressed(node, name, matrices, tensors)
        if isinstance(old, nn.Module) and hasattr(old, "weight") \
                and tuple(old.weight.shape) != tuple(new.weight_shape()):
            raise ValueError(f"model= module {name!r} has a weight of shape "
                             f"{tuple(old.weight.shape)}, the file's is {new.weight_shape()}")
        root = L.replace_module(root, old, new)
    return root


def _walk(node, name):
    if not isinstance(node, dict):
        raise _Bad(f"module {name!r} is malformed")
    yield name, node
    children = node.get("children", [])
    if not isinstance(children, list):
        raise _Bad(f"module {name!r} is malformed")
    for child in children:
        if not (isinstance(child, list) and len(child) == 2 and isinstance(child[0], str)):
            raise _Bad(f"module {name!r} lists a malformed child")
        yield from _walk(child[1], f"{name}.{child[0]}" if name else child[0])


def _assign(root: nn.Module, tensors: dict[str, np.ndarray]) -> None:
    """Give the model the file's tensors (replacing meta placeholders); every tensor the
    model expects must be there, with its shape."""
    state = {key: torch.from_numpy(t) for key, t in tensors.items()}
    expected = root.state_dict(keep_vars=True)
    for key, t in state.items():
        if key in expected and tuple(expected[key].shape) != tuple(t.shape):
            raise _Bad(f"tensor {key!r} has shape {tuple(t.shape)}, the module expects "
                       f"{tuple(expected[key].shape)}")
    for key, ref in expected.items():
        if isinstance(ref, torch.Tensor) and ref.is_floating_point() \
                and key in state and not state[key].is_floating_point():
            raise _Bad(f"tensor {key!r} has dtype {state[key].dtype}")
    result = root.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in result.missing_keys if not k.endswith("_extra_state")]
    if missing or result.unexpected_keys:
        raise _Bad(f"tensors do not match the model: missing {missing}, "
                   f"unexpected {list(result.unexpected_keys)}")
    for mod in root.modules():  # biases of compressed layers stay out of training
        if isinstance(mod, L.CompressedModule) and mod.bias is not None:
            mod.bias.requires_grad_(False)
    left = [key for key, t in root.state_dict(keep_vars=True).items()
            if isinstance(t, torch.Tensor) and t.is_meta]
    if left:
        raise _Bad(f"tensors {left} are missing")
