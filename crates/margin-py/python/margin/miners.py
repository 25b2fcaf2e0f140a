"""Miners for :mod:`margin.losses`, with pytorch-metric-learning's names and defaults.

Each is a small value object holding the miner's table (``{"kind": ..., parameters}``, the
config file's ``[train.miner]``); parameters not given keep margin's defaults, which are
PML's. Unknown parameters are refused when the loss is called, naming the field.
"""

from __future__ import annotations

import json

from . import _margin


class Miner:
    """A miner by its ``kind`` (``margin loss --miner`` names) and parameters."""

    kind = ""

    def __init__(self, kind=None, *, distance=None, normalize=True, **params):
        kind = kind or self.kind
        table = json.loads(_margin.miner_defaults(kind))
        table.update(params)
        self.table = table
        self.distance = distance
        self.normalize = normalize

    def to_json(self) -> str:
        return json.dumps(self.table)

    def __repr__(self):
        return f"{type(self).__name__}({self.table!r})"


def _miner(name, kind):
    return type(name, (Miner,), {"kind": kind, "__doc__": f"PML's ``{name}`` (margin kind ``{kind}``)."})


BatchHardMiner = _miner("BatchHardMiner", "batch-hard")
BatchEasyHardMiner = _miner("BatchEasyHardMiner", "batch-easy-hard")
TripletMarginMiner = _miner("TripletMarginMiner", "triplet-margin")
FaceNetSemiHardMiner = _miner("FaceNetSemiHardMiner", "semihard-facenet")
PairMarginMiner = _miner("PairMarginMiner", "pair-margin")
MultiSimilarityMiner = _miner("MultiSimilarityMiner", "multi-similarity")
DistanceWeightedMiner = _miner("DistanceWeightedMiner", "distance-weighted")
