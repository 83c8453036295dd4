"""Small torch.save files for readTorchCheckpoint's tests, with the values they must read back.

Regenerate (Debian 12: apt-get install python3-torch):
    /usr/bin/python3 packages/nn/scripts/make_torch_fixtures.py packages/nn/test/fixtures/torch
"""
import collections
import json
import pickle
import os
import sys

import torch

out = sys.argv[1]
torch.manual_seed(0)
big = torch.arange(10, dtype=torch.float32)
state = collections.OrderedDict()
state["features.0.weight"] = torch.nn.Parameter(torch.randn(2, 3, 3, 3))
state["features.0.bias"] = torch.randn(2).half()
state["norm.weight"] = torch.randn(3).bfloat16()
state["norm.running_var"] = torch.rand(3, dtype=torch.float64)
state["norm.num_batches_tracked"] = torch.tensor(7)
state["proj.weight"] = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()  # non-contiguous
state["slice"] = big[3:7]  # storage offset 3 into a shared storage
state["also_big"] = big  # the same storage again
state["empty"] = torch.zeros(0, 4)
nested = {"alpha": torch.randn(1, 4, 1, 1), "beta": torch.randn(1, 4, 1, 1)}

expected = {}
for k, v in state.items():
    expected[k] = {"shape": list(v.shape), "data": v.detach().float().flatten().tolist()}
expected_nested = {k: {"shape": list(v.shape), "data": v.float().flatten().tolist()} for k, v in nested.items()}

torch.save(state, os.path.join(out, "state_zip.pth"))
torch.save(state, os.path.join(out, "state_legacy.pth"), _use_new_zipfile_serialization=False)
torch.save({"epoch": 3, "state_dict": state, "note": "wrapped"}, os.path.join(out, "wrapped.pth"))
torch.save(nested, os.path.join(out, "dists_like.pt"))
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump({"torch": torch.__version__, "state": expected, "nested": expected_nested}, f)


class RunsCode:
    """What a malicious checkpoint does: unpickling calls os.system. The reader must refuse it."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


with open(os.path.join(out, "malicious.pkl"), "wb") as f:
    f.write(pickle.dumps(RunsCode(), protocol=2))
