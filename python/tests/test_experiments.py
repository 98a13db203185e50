"""extract, train, sweep, icl, analyze_mlp: tiny runs whose numbers and files
equal the CLI's (same library underneath)."""
import os

import numpy as np

import steer
from conftest import FT, MODEL, REPO, cli

DEV = os.path.join(REPO, "tests", "data", "winogrande", "dev.jsonl")
TRAIN = os.path.join(REPO, "tests", "data", "winogrande", "train_m.jsonl")
POS = ["I love this, it is wonderful", "What a happy day", "She smiled and laughed", "The sun was warm and bright"]
NEG = ["I hate this, it is awful", "What a sad day", "She cried and shouted", "The rain was cold and dark"]


def same_file(a, b):
    return open(a, "rb").read() == open(b, "rb").read()


def test_extract_equals_cli(model, tmp_path):
    (tmp_path / "pos.txt").write_text("\n".join(POS) + "\n")
    (tmp_path / "neg.txt").write_text("\n".join(NEG) + "\n")
    for method, fn, kw in [("mean-diff", steer.extract.mean_diff, {}),
                           ("pca-diff", steer.extract.pca, {"kind": "diff"}),
                           ("pca-center", steer.extract.pca, {"kind": "center"})]:
        for token in ("last", "all"):
            out = tmp_path / ("%s-%s.safetensors" % (method, token))
            cli("extract", "--method", method, "-m", MODEL, "--pos", tmp_path / "pos.txt", "--neg",
                tmp_path / "neg.txt", "--site", "resid_post,attn_out", "--layers", "all", "--token", token, "-o", out)
            ref = steer.Vectors.load(out)
            got = fn(model, POS, NEG, sites=["resid_post", "attn_out"], layers="all", token=token, batch_size=3, **kw)
            assert sorted(got.keys()) == sorted(ref.keys()) and len(got) == 10
            for k in ref.keys():
                assert got[k].tobytes() == ref[k].tobytes(), (method, token, k)


def test_train_tiny_equals_cli(model, tmp_path):
    r = steer.train(model, "winogrande:" + DEV, method="vector", layers=[2], steps=3, batch=4, n=16,
                    out=tmp_path / "py")
    assert r["steps"] == 3 and r["loss_curve"].shape == (3,) and np.isfinite(r["loss_curve"]).all()
    assert os.path.isfile(r["path"]) and r["n_trainable"] == 64
    cli("train", "-m", MODEL, "--data", "winogrande:" + DEV, "--n-train", 16, "--method", "vector", "--layers", 2,
        "--steps", 3, "--batch", 4, "--out", tmp_path / "cli", "--quiet")
    ref, _ = steer.read_safetensors(tmp_path / "cli" / "adapter.safetensors")
    got, _ = steer.read_safetensors(r["path"])
    assert ref.keys() == got.keys() and all(ref[k].tobytes() == got[k].tobytes() for k in ref)
    strip = lambda p: [l.rsplit(",", 1)[0] for l in open(p)]  # without tokens_per_s (a timing)
    assert strip(tmp_path / "cli" / "train.csv") == strip(tmp_path / "py" / "train.csv")
    losses = np.loadtxt(tmp_path / "py" / "train.csv", delimiter=",", skiprows=1, usecols=2, ndmin=1)
    assert np.allclose(losses[-3:], r["loss_curve"], rtol=1e-6)


def test_sweep_tiny_equals_cli(tmp_path):
    with steer.Model.load(MODEL) as b, steer.Model.load(FT) as f:
        r = steer.sweep(b, f, "winogrande:" + DEV, n=2, layers=[0, 4], tokens=2, out=tmp_path / "py")
    assert r["dkl"].shape == (4, 2, 5, 2) and r["sites"] == ["mlp_in", "attn_out", "mlp_out", "resid_post"]
    assert len(r["items"]) == 2 and np.all(r["n"] >= 1)
    assert np.allclose(r["dkl"][:, :, 0, :], 0)  # alpha 0 changes nothing
    cli("sweep", "--base", MODEL, "--ft", FT, "--data", "winogrande:" + DEV, "--n", 2, "--layers", "0,4",
        "--tokens", 2, "--quiet", "--out", tmp_path / "cli")
    for name in ("dkl.csv", "items.csv"):
        assert same_file(tmp_path / "cli" / name, tmp_path / "py" / name), name
    assert os.path.isfile(tmp_path / "py" / "dkl_resid_post.png")
    it = r["items"][0]
    mean0 = np.mean([i["kl_steered"][3, 1, 4, 0] - i["kl_base"][0] for i in r["items"]])
    assert np.isclose(mean0, r["dkl"][3, 1, 4, 0], rtol=1e-9) and it["tokens"].shape == (2,)


def test_icl_tiny_equals_cli(tmp_path):
    with steer.Model.load(FT) as m:
        r = steer.icl(m, "winogrande:" + DEV, pool="winogrande:" + TRAIN, shots=1, n_eval=2, n_train=2,
                      learn_steps=2, learn_batch=2, out=tmp_path / "py",
                      learn_lr=float(np.float32(1e-2)))  # the CLI parses --lr (default 1e-2) as a float
    assert r["n_eval"] == 2 and r["n_train"] == 2 and r["exact_max_abs"] == 0.0
    cli("icl", "-m", FT, "--data", "winogrande:" + DEV, "--pool", "winogrande:" + TRAIN, "--shots", 1, "--n", 2,
        "--n-train", 2, "--steps", 2, "--batch", 2, "--quiet", "--out", tmp_path / "cli")
    for name in ("icl.csv", "icl_layers.csv", "items_icl.csv"):
        assert same_file(tmp_path / "cli" / name, tmp_path / "py" / name), name


def test_analyze_mlp_tiny_equals_cli(model, tmp_path):
    r = steer.analyze_mlp(model, "winogrande:" + DEV, n=6, token=2, out=tmp_path / "py")
    assert r["items"] + r["skipped"] == 6 and r["positions"] == r["items"]
    assert set(r["stats"]) == set(range(5)) and r["values"][(0, "g1")].shape == (r["positions"] * 172,)
    st = r["stats"][3]["g2"]
    v = r["values"][(3, "g2")]
    assert st["n"] == v.size and np.isclose(st["mean"], np.abs(v).astype(np.float64).mean(), rtol=1e-5)
    cli("analyze-mlp", "-m", MODEL, "--data", "winogrande:" + DEV, "--n", 6, "--token", 2, "--quiet", "--out",
        tmp_path / "cli")
    for name in ("mlp_stats.csv", "hist.csv"):
        assert same_file(tmp_path / "cli" / name, tmp_path / "py" / name), name
