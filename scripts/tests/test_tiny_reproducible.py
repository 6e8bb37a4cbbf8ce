"""The committed tiny-llama (model, tokenizer, fixtures, stage cuts) is exactly
what the scripts produce today: rebuilding it from its seed gives the same bytes.
Fails when the builder, the cutter or the fixture writer drift from what is
committed under models/tiny-llama (rerun scripts/prepare_tiny.sh and commit)."""
import filecmp
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
    differ = [f for f in built if not filecmp.cmp(out / f, COMMITTED / f, shallow=False)]
    assert differ == [], f"rebuilt files differ from the committed ones: {differ}"
