"""The committed tiny-llama (model, tokenizer, fixtures, stage cuts) is exactly
what the scripts produce today: rebuilding it from its seed gives the same bytes.
Fails when the builder, the cutter or the fixture writer drift from what is
committed under models/tiny-llama (rerun scripts/prepare_tiny.sh and commit).

The one exception is the logits in fixtures.json: onnxruntime's float results
differ in their last digits between CPUs (kernels picked by instruction set),
so those are compared within 1e-4 (the engine's own tolerance); everything
else in the fixtures (token ids, text, layout) must be equal."""
import filecmp
import json
import math
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "models" / "tiny-llama"


def files(d: Path):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def test_committed_tiny_model_is_reproducible(tmp_path):
    out = tmp_path / "tiny-llama"
    subprocess.run(["bash", "scripts/prepare_tiny.sh", str(out)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    built = files(out)
    assert built == files(COMMITTED)
    assert "source/model.onnx" in built and "fixtures.json" in built
    assert "stages-2/stage-1.onnx" in built
    differ = [f for f in built if f != "fixtures.json"
              and not filecmp.cmp(out / f, COMMITTED / f, shallow=False)]
    assert differ == [], f"rebuilt files differ from the committed ones: {differ}"
    rebuilt = json.loads((out / "fixtures.json").read_text())
    committed = json.loads((COMMITTED / "fixtures.json").read_text())
    assert_close(rebuilt, committed, "fixtures.json")


def assert_close(a, b, path):
    """Equal structure and values; floats within 1e-4."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), path
        assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-4), f"{path}: {a} != {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_close_comparison_tells_digits_from_drift():
    assert_close({"x": [1, 9.1377735]}, {"x": [1, 9.137772]}, "f")
    for other in ({"x": [2, 9.1377735]}, {"x": [1, 9.2]}, {"y": [1, 9.1377735]}):
        try:
            assert_close({"x": [1, 9.1377735]}, other, "f")
        except AssertionError:
            continue
        raise AssertionError(f"{other} passed as close")
