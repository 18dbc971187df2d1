"""Matching a weights file's tensors with the tensors of verified artifacts (numpy only, no model code).

Exporters do not keep weights under their names: the dynamo ONNX exporter renames and transposes
Linear weights (``val_7``) and folds BatchNorm into the preceding Conv/Gemm (keeping the
convolution's name on the folded values), the legacy exporter repacks LSTM/GRU weights (gates
reordered, input and recurrent weights split, biases concatenated), and buffers such as
``num_batches_tracked`` are in no graph. Each tensor is therefore matched, in this order:

1. by name: exact; any difference fails, except in an ONNX file where BatchNorm folding may explain it;
2. by value: the same bytes (any shape), the same bytes transposed (2-D), or its equal row blocks
   along axis 0 (k = 2..4: gate repacking, fused QKV) found as aligned contiguous slices, each
   possibly transposed, inside anchor tensors;
3. by a BatchNorm fold: ``w * g / sqrt(var + eps)`` and ``(b - mean) * g / sqrt(var + eps) + beta``,
   recomputed from the file's own tensors, equal an anchor tensor within ``FOLD_RTOL`` of its
   largest value (the fold is float32 arithmetic, so not bit-exact);
4. otherwise: a failure when an unclaimed float anchor tensor of the same shape (transposed shape,
   same element count) exists or only some of its blocks matched (a tampered tensor), else unproven.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from modelport.validators.identical import same_bytes

__all__ = ["FOLD_RTOL", "AnchorTensors", "Match", "match_tensors"]

FOLD_RTOL = 1e-5  # of the folded tensor's largest value: float32 rounding of the fold stays far below
_BN_EPS = (1e-5, 1e-3, 1e-4, 1e-6, 0.0)  # torch.nn.BatchNorm's default first; torchvision also uses 1e-3


@dataclass(frozen=True)
class AnchorTensors:
    """Tensors of one verified artifact. ``exact_names``: the names are the model's state (a .pt2)."""

    source: str  # the format: "torch_export", "onnx"
    tensors: Mapping[str, np.ndarray]
    exact_names: bool


@dataclass
class Match:
    """How one tensor of the file was matched; ``reference`` is what it was compared with."""

    name: str
    how: str  # "name", "value", "transposed", "blocks", "folded", "fail", "unproven"
    source: str | None = None
    detail: str = ""
    reference: np.ndarray | None = None  # the anchor's tensor; for value matches, rebuilt from the slices found
    used: list[tuple[str, str]] = field(default_factory=list)  # (source, anchor tensor) it was found in
    folds: list[tuple[str, np.ndarray, np.ndarray]] = field(default_factory=list)  # (label, anchor, recomputed)


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"


def _constant(a: np.ndarray) -> bool:
    return a.size == 0 or bool(np.all(a.reshape(-1) == a.reshape(-1)[0]))


_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _bits(a: np.ndarray) -> np.ndarray | None:
    """The array's elements as unsigned integers of the same width: compared bit for bit (NaN, -0.0)."""
    uint = _UINT.get(a.dtype.itemsize)
    return None if uint is None else np.ascontiguousarray(a).reshape(-1).view(uint)


class _Slices:
    """Aligned contiguous slices of the anchor tensors, searched by their bits (vectorised, no index to build)."""

    def __init__(self, anchors: list[AnchorTensors]) -> None:
        self._anchors = anchors
        self._bits: dict[tuple[str, str], np.ndarray | None] = {}

    def find(self, block: np.ndarray, claimed: set[tuple[str, str]]) -> tuple[str, str, int] | None:
        """Where ``block``'s bits lie at an aligned offset inside an anchor tensor; unclaimed tensors first.

        A claimed tensor may still prove another: exporters store identical tensors once (LayerNorm
        ones and zeros, tied weights). A tensor whose own name holds other values never gets here.
        """
        want = _bits(block)
        n = block.size
        if want is None or n == 0:
            return None
        hits = []
        for anchor in self._anchors:
            for name, a in anchor.tensors.items():
                if a.dtype != block.dtype or a.size < n or a.size % n:
                    continue
                key = (anchor.source, name)
                if key not in self._bits:
                    self._bits[key] = _bits(a)
                bits = self._bits[key]
                assert bits is not None  # same dtype as the block
                rows = bits.reshape(-1, n)
                first = np.flatnonzero(rows[:, 0] == want[0])  # cheap: one element per row
                same = first[(rows[first] == want).all(axis=1)] if first.size else first
                hits += [(anchor.source, name, int(r)) for r in same[:1]]
        hits.sort(key=lambda h: (h[0], h[1]) in claimed)
        return hits[0] if hits else None

    def get(self, hit: tuple[str, str, int], n: int) -> np.ndarray:
        """The anchor slice a ``find`` hit points to, flat."""
        rows: np.ndarray = np.ascontiguousarray(self._tensor(hit[0], hit[1])).reshape(-1, n)
        row: np.ndarray = rows[hit[2]]
        return row

    def _tensor(self, source: str, name: str) -> np.ndarray:
        return next(a.tensors[name] for a in self._anchors if a.source == source)


def _find_blocks(t: np.ndarray, slices: _Slices, claimed: set[tuple[str, str]]) -> Match | None:
    """A value match, rebuilt from the anchors' slices; a failing Match when only some blocks match; or None."""
    key = ""
    whole = slices.find(t, claimed)
    if whole is not None:
        return Match(key, "value", whole[0], f"{whole[1]}", slices.get(whole, t.size).reshape(t.shape), [whole[:2]])
    if t.ndim == 2 and t.shape[0] > 1 and t.shape[1] > 1:
        hit = slices.find(t.T, claimed)
        if hit is not None:
            rebuilt = slices.get(hit, t.size).reshape(t.shape[::-1]).T
            return Match(key, "transposed", hit[0], f"{hit[1]}, transposed", rebuilt, [hit[:2]])
    partial: Match | None = None
    rows = t.shape[0] if t.ndim else 0
    for k in (2, 3, 4):
        if rows % k or t.size // k < 2:
            continue
        blocks = np.split(t, k, axis=0)
        found: list[tuple[tuple[str, str, int], bool] | None] = []
        for b in blocks:
            hit, flipped = slices.find(b, claimed), False
            if hit is None and b.ndim == 2 and b.shape[0] > 1 and b.shape[1] > 1:
                hit, flipped = slices.find(b.T, claimed), True
            found.append((hit, flipped) if hit is not None else None)
        if all(f is not None for f in found):
            parts = []
            for b, f in zip(blocks, found, strict=True):
                assert f is not None
                part = slices.get(f[0], b.size)
                parts.append(part.reshape(b.shape[::-1]).T if f[1] else part.reshape(b.shape))
            used = sorted({f[0][:2] for f in found if f is not None})
            detail = f"{k} row blocks inside {', '.join(n for _, n in used)}"
            return Match(key, "blocks", used[0][0], detail, np.concatenate(parts, axis=0), used)
        evidence = [f for b, f in zip(blocks, found, strict=True) if f is not None and not _constant(b)]
        if evidence and partial is None:
            step = rows // k
            missing = ", ".join(f"rows {i * step}:{(i + 1) * step}" for i, f in enumerate(found) if f is None)
            where = ", ".join(sorted({f[0][1] for f in evidence}))
            detail = f"{len(evidence)} of its {k} row blocks lie in verified tensors ({where}), but {missing} do not"
            partial = Match(key, "fail", evidence[0][0][0], detail)
    return partial


def _bn_groups(state: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, ...]]:
    """BatchNorm layers of the file: prefix -> (weight, bias, running_mean, running_var), in float64."""
    groups: dict[str, tuple[np.ndarray, ...]] = {}
    for key, var in state.items():
        if not key.endswith(".running_var") or not _is_float(var) or var.ndim != 1:
            continue
        prefix = key.removesuffix(".running_var")
        mean = state.get(f"{prefix}.running_mean")
        if mean is None or mean.shape != var.shape:
            continue
        g, beta = state.get(f"{prefix}.weight"), state.get(f"{prefix}.bias")
        ones, zeros = np.ones(var.shape), np.zeros(var.shape)
        groups[prefix] = (
            g.astype(np.float64) if g is not None and g.shape == var.shape else ones,
            beta.astype(np.float64) if beta is not None and beta.shape == var.shape else zeros,
            mean.astype(np.float64),
            var.astype(np.float64),
        )
    return groups


def _close(anchor: np.ndarray, recomputed: np.ndarray) -> bool:
    if anchor.shape != recomputed.shape or not _is_float(anchor):
        return False
    scale = float(np.max(np.abs(recomputed))) if recomputed.size else 0.0
    return bool(np.max(np.abs(anchor.astype(np.float64) - recomputed), initial=0.0) <= FOLD_RTOL * max(scale, 1e-30))


class _Matcher:
    def __init__(self, state: Mapping[str, np.ndarray], anchors: list[AnchorTensors]) -> None:
        self.state = state
        self.anchors = anchors
        self.slices = _Slices(anchors)
        self.claimed: set[tuple[str, str]] = set()
        self.matches: dict[str, Match] = {}
        self.named_other: list[str] = []  # same name and shape as an ONNX tensor, other values

    def by_name(self) -> list[str]:
        """Exact comparisons by name; returns the names left for the other steps."""
        left = []
        for key, t in self.state.items():
            anchor = next((a for a in self.anchors if key in a.tensors), None)
            ref = anchor.tensors[key] if anchor is not None else None
            if anchor is None or ref is None or (not anchor.exact_names and ref.shape != t.shape):
                left.append(key)
                continue
            same = same_bytes(ref, t)  # chunked: a 1 GB tensor is never copied whole
            if not same and not anchor.exact_names:
                # An ONNX tensor may keep its name on folded values: only a fold explains that, never
                # another tensor's values (a layer's weights copied over the next one's must fail).
                self.named_other.append(key)
                continue
            self.claimed.add((anchor.source, key))
            self.matches[key] = Match(key, "name" if same else "fail", anchor.source, reference=ref)
        return left

    def by_value(self, keys: list[str]) -> list[str]:
        left = []
        for key in keys:
            found = _find_blocks(self.state[key], self.slices, self.claimed)
            if found is None or found.how == "fail":
                left.append(key)
            if found is not None:
                found.name = key
                self.claimed.update(found.used)
                self.matches[key] = found
        return left

    def _anchor_candidates(self, name: str, shape: tuple[int, ...]) -> list[tuple[str, str, np.ndarray]]:
        """The same-named anchor tensor first, then unclaimed float tensors of that shape."""
        found = [(a.source, name, a.tensors[name]) for a in self.anchors if name in a.tensors]
        found += [
            (a.source, n, t)
            for a in self.anchors
            for n, t in a.tensors.items()
            if n != name and (a.source, n) not in self.claimed and t.shape == shape and _is_float(t)
        ]
        return [f for f in found if f[2].shape == shape]

    def by_fold(self, keys: list[str]) -> None:
        groups = _bn_groups(self.state)
        for key in keys:
            w = self.state[key]
            if (key in self.matches and self.matches[key].how != "fail") or not _is_float(w) or w.ndim < 2:
                continue
            for prefix, (g, beta, mean, var) in groups.items():
                if var.shape[0] == w.shape[0] and self._try_fold(key, prefix, (g, beta, mean, var)):
                    break

    def _try_fold(self, key: str, prefix: str, bn: tuple[np.ndarray, ...]) -> bool:
        g, beta, mean, var = bn
        w = self.state[key]
        bias_key = key.removesuffix("weight") + "bias" if key.endswith("weight") else None
        b = self.state.get(bias_key) if bias_key else None
        b64 = b.astype(np.float64) if b is not None and b.shape == var.shape else np.zeros(var.shape)
        for eps in _BN_EPS:
            scale = g / np.sqrt(var + eps)
            folded_w = w.astype(np.float64) * scale.reshape(-1, *([1] * (w.ndim - 1)))
            folded_b = (b64 - mean) * scale + beta
            aw = next((c for c in self._anchor_candidates(key, w.shape) if _close(c[2], folded_w)), None)
            if aw is None:
                continue
            ab = next((c for c in self._anchor_candidates(bias_key or "", var.shape) if _close(c[2], folded_b)), None)
            if ab is None:
                continue
            self.claimed.update({aw[:2], ab[:2]})
            detail = f"BatchNorm {prefix} (eps {eps:g}) folded into {aw[1]} and {ab[1]} of the {aw[0]} file"
            folds = [(f"{aw[1]} (folded {key})", aw[2], folded_w), (f"{ab[1]} (folded bias)", ab[2], folded_b)]
            members = [key, *([bias_key] if bias_key is not None and b is not None else [])]
            members += [f"{prefix}.{s}" for s in ("weight", "bias", "running_mean", "running_var")]
            for m in members:
                if m in self.state and (m not in self.matches or self.matches[m].how in ("fail", "unproven")):
                    self.matches[m] = Match(m, "folded", aw[0], detail, folds=folds if m == key else [])
            return True
        return False

    def unmatched(self, key: str) -> Match:
        """A tensor nothing matched: a failure when it has a counterpart it differs from, else unproven."""
        t = self.state[key]
        for a in self.anchors:  # an ONNX tensor that kept the name but not the values, and no fold explains it
            ref = a.tensors.get(key)
            if ref is not None and ref.size == t.size and (a.source, key) not in self.claimed:
                return Match(key, "fail", a.source, "differs from the tensor of that name", ref.reshape(t.shape))
        pair = self.counterpart(key)
        if pair is None:
            return Match(key, "unproven")
        source, name, view = pair
        detail = f"matches no verified tensor, while {name} of the {source} file, of its size, matches nothing"
        return Match(key, "fail", source, detail, reference=view)

    def counterpart(self, key: str) -> tuple[str, str, np.ndarray] | None:
        """An unclaimed float anchor tensor that could be this one's (same shape, transposed, same size).

        Returned as the view of it nearest to the tensor, so that the failure's numbers mean something:
        transposed or not, and with its row blocks in the order that fits best (LSTM/GRU gates).
        """
        t = self.state[key]
        if not _is_float(t) or t.size < 2:
            return None  # 1-element graph constants (eps, scales, shapes) are everywhere
        best: tuple[float, tuple[str, str, np.ndarray]] | None = None
        for a in self.anchors:
            for n, ref in a.tensors.items():
                if (a.source, n) in self.claimed or ref.dtype != t.dtype or ref.size != t.size:
                    continue
                for view in _views(ref, t):
                    err = float(np.max(np.abs(view.astype(np.float64) - t.astype(np.float64))))
                    if best is None or err < best[0]:
                        best = (err, (a.source, n, view))
        return best[1] if best else None


def _views(ref: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
    """``ref`` seen in ``t``'s shape: as is, transposed (2-D), and with its k row blocks reordered to fit ``t``."""
    views = [ref.reshape(t.shape)]
    if t.ndim == 2 and ref.shape == t.shape[::-1]:
        views.append(ref.T)
    rows = t.shape[0] if t.ndim else 0
    flat = np.ascontiguousarray(ref).reshape(-1)
    for k in (2, 3, 4):
        if rows % k:
            continue
        blocks = np.split(t, k, axis=0)
        slices = flat.reshape(k, -1)
        nearest = [
            slices[int(np.argmin([np.max(np.abs(s - b.reshape(-1)), initial=0.0) for s in slices]))] for b in blocks
        ]
        views.append(np.concatenate(nearest).reshape(t.shape))
    return views


def match_tensors(state: Mapping[str, np.ndarray], anchors: list[AnchorTensors]) -> dict[str, Match]:
    """One Match per tensor of ``state``, in the file's order."""
    m = _Matcher(state, anchors)
    left = m.by_value(m.by_name())
    m.by_fold([k for k in state if k in left or k in m.named_other or m.matches.get(k, Match(k, "")).how == "fail"])
    for key in state:
        if key not in m.matches:
            m.matches[key] = m.unmatched(key)
    return {k: m.matches[k] for k in state}
