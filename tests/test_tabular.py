"""Columnar files in three formats and the table evaluation."""

from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot

from hepflows.io import InputError
from hepflows.tabular import evaluate_table, read_columns


def jets(n: int, seed: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    flavour = rng.choice([0, 4, 5], size=n, p=[0.6, 0.15, 0.25])
    pt = rng.exponential(50.0, n) + 20
    btag = np.clip(rng.normal(0.2 + 0.6 * (flavour == 5) + shift, 0.2), 0, 1)
    return {"pt": pt, "eta": rng.normal(0, 1.5, n), "btag": btag, "flavour": flavour.astype(float)}


def write(path: Path, data: dict[str, np.ndarray]) -> Path:
    if path.suffix == ".h5":
        with h5py.File(path, "w") as f:
            for k, v in data.items():
                f[k] = v
    elif path.suffix == ".parquet":
        pq.write_table(pa.table(data), path)
    else:  # a classic TTree (most existing files), filled in two baskets
        with uproot.recreate(path) as f:
            tree = f.mktree("jets", {k: np.float64 for k in data})
            half = len(data["pt"]) // 2
            tree.extend({k: v[:half] for k, v in data.items()})
            tree.extend({k: v[half:] for k, v in data.items()})
    return path


@pytest.mark.parametrize("suffix", [".h5", ".parquet", ".root"])
def test_every_format_reads_the_same_columns(tmp_path: Path, suffix: str) -> None:
    data = jets(500, 0)
    cols = read_columns(write(tmp_path / f"t{suffix}", data))
    assert set(cols) == set(data)
    for k in data:
        assert np.allclose(cols[k], data[k])
    with pytest.raises(InputError, match="missing column"):
        read_columns(tmp_path / f"t{suffix}", ["pt", "nope"])


def test_table_evaluation_sees_a_shifted_tagger(tmp_path: Path) -> None:
    ref = write(tmp_path / "ref.parquet", jets(4000, 1))
    same = write(tmp_path / "same.h5", jets(4000, 2))
    shifted = write(tmp_path / "shift.root", jets(4000, 3, shift=0.15))
    kw = dict(columns=["pt", "eta", "btag"], conditions=["flavour"], taggers={"b": "btag"},
              flavour="flavour")  # fmt: skip
    good = evaluate_table(ref, same, **kw)
    bad = evaluate_table(ref, shifted, **kw)
    assert good.per_column["btag"]["ks_pvalue"] > 1e-3 > bad.per_column["btag"]["ks_pvalue"]
    assert bad.global_metrics["abc"]["b"] > good.global_metrics["abc"]["b"]
    c_good = good.global_metrics["c2st_misclassification"]["value"]
    c_bad = bad.global_metrics["c2st_misclassification"]["value"]
    assert c_good > 0.45 and c_bad < c_good


def test_unreadable_and_unknown_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"nope")
    with pytest.raises(InputError, match="could not be read"):
        read_columns(bad)
    with pytest.raises(InputError, match="unknown table format"):
        (tmp_path / "x.csv").write_text("a\n1\n")
        read_columns(tmp_path / "x.csv")


def test_rntuple_files_are_read_too(tmp_path: Path) -> None:
    data = jets(100, 5)
    with uproot.recreate(tmp_path / "n.root") as f:
        f["jets"] = data  # uproot >= 5.7 writes a dict as an RNTuple
    assert np.allclose(read_columns(tmp_path / "n.root", ["btag"])["btag"], data["btag"])
