"""Model: logits bit for bit equal to the C library (via `steer logits`), the
llama2.c goldens within 1e-4, steered logits / greedy generations / captures
equal to the CLI's, hooks equal to declarative specs, streaming, Vectors."""
import json
import os

import numpy as np
import pytest

import steer
from conftest import CASES, GGUF, MODEL, cli

TOL_LOGITS_GOLDEN = 1e-4  # tests/unit/tolerances.h TOL_LOGITS_GOLDEN
PROMPTS = ["Once upon a time", "Lily and Tom went to the park.", "The cat"]


def cli_logits(tmp_path, *args):
    out = tmp_path / "logits.safetensors"
    cli("logits", "-m", MODEL, *args, "-o", out)
    t, _ = steer.read_safetensors(out)
    return t["logits"], t["tokens"]


def test_config_and_tokens(model):
    c = model.config
    assert (c["arch_name"], c["n_layer"], c["d_model"], c["n_vocab"], c["n_head"], c["n_kv_head"]) == \
        ("llama", 5, 64, 512, 8, 4)
    for name in ("once_upon_a_time", "lily_and_tom", "the_cat"):
        j = json.load(open(os.path.join(CASES, name + ".json")))
        ids = model.tokenize(j["prompt"])
        assert ids.dtype == np.int32 and ids.tolist() == j["prompt_token_ids"]
        assert model.detokenize(ids) == j["prompt"]


@pytest.mark.parametrize("name", ["once_upon_a_time", "lily_and_tom", "the_cat"])
def test_logits_golden_llama2c(model, name):
    j = json.load(open(os.path.join(CASES, name + ".json")))
    gold = np.fromfile(os.path.join(CASES, name + ".logits.f32.bin"), dtype=np.float32).reshape(-1, 512)
    got = model.logits(j["all_token_ids"])
    assert got.shape == gold.shape and got.dtype == np.float32
    d = float(np.abs(got - gold).max())
    print("%s: max |python - llama2.c| = %.3e" % (name, d))
    assert d <= TOL_LOGITS_GOLDEN
    assert (got.argmax(1)[len(j["prompt_token_ids"]) - 1:-1] == j["generated_token_ids"]).all()


@pytest.mark.parametrize("prompt", PROMPTS)
def test_logits_bitwise_equal_c(model, tmp_path, prompt):
    ref, toks = cli_logits(tmp_path, "--prompt", prompt)
    got = model.logits(prompt)
    assert toks.tolist() == model.tokenize(prompt).tolist()
    assert got.tobytes() == ref.tobytes()  # bit for bit
    ids = model.tokenize(prompt)
    ref2, _ = cli_logits(tmp_path, "--ids", " ".join(map(str, ids)))
    assert model.logits(ids).tobytes() == ref2.tobytes()
    assert model.logits(list(ids)).tobytes() == ref.tobytes()


def test_logits_gguf_equal_bin(model):
    with steer.Model.load(GGUF) as g:
        assert g.logits(PROMPTS[0]).tobytes() == model.logits(PROMPTS[0]).tobytes()


def _vectors(tmp_path, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    v = steer.Vectors()
    for l in range(5):
        v["resid_post", l] = (scale * rng.standard_normal(64)).astype(np.float32)
        v["attn_out", l] = (scale * rng.standard_normal(64)).astype(np.float32)
    path = tmp_path / ("v%d.safetensors" % seed)
    v.save(path)
    return v, str(path)


def test_steered_logits_equal_cli(model, tmp_path):
    v, path = _vectors(tmp_path, 0)
    _, path2 = _vectors(tmp_path, 1, 0.5)
    cvec = steer.Vectors({("resid_post", l): v["resid_post", l] * 0.3 for l in (1, 2, 3, 4)})
    cpath = str(tmp_path / "cv.gguf")
    cvec.save(cpath)
    base = model.logits(PROMPTS[1])
    cases = [
        (["--steer", path + ":resid_post:2-3:4.0"], [steer.Add(path, site="resid_post", layers=[2, 3], alpha=4.0)]),
        (["--steer", path + ":attn_out:1:2.5", "--steer", path2 + ":resid_post:all:-1.5"],
         [steer.Add(path, site="attn_out", layers=1, alpha=2.5), steer.Add(path2, site="resid_post", alpha=-1.5)]),
        (["--control-vector", cpath + ":0.8"], [steer.ControlVector(cpath, scale=0.8)]),
        (["--control-vector", cpath + ":1.5", "--steer", path + ":resid_post:3:2"],
         [steer.ControlVector(cpath, scale=1.5), steer.Add(v, site="resid_post", layers=[3], alpha=2.0)]),
        (["--ablate", path + ":resid_post:2"], [steer.Ablate(path, site="resid_post", layers=[2])]),
    ]
    for args, specs in cases:
        ref, _ = cli_logits(tmp_path, "--prompt", PROMPTS[1], *args)
        got = model.logits(PROMPTS[1], steer=specs)
        assert got.tobytes() == ref.tobytes(), args
        assert not np.array_equal(got, base), args  # the steering did something
        with model.steering(*specs):  # the same held by a context manager
            assert model.logits(PROMPTS[1]).tobytes() == ref.tobytes()
    assert model.logits(PROMPTS[1]).tobytes() == base.tobytes()  # nothing left behind


def test_greedy_generation_equal_cli(model, tmp_path):
    v, path = _vectors(tmp_path, 2)
    cvec = steer.Vectors({("resid_post", l): v["resid_post", l] for l in (1, 2, 3)})
    cpath = str(tmp_path / "cv2.gguf")
    cvec.save(cpath)
    cases = [([], None),
             (["--steer", path + ":resid_post:1-2:1.0"], [steer.Add(path, site="resid_post", layers=[1, 2], alpha=1.0)]),
             (["--control-vector", cpath + ":0.4"], steer.ControlVector(cpath, 0.4))]
    texts = {}
    for prompt in PROMPTS[:2]:
        for c, (args, spec) in enumerate(cases):
            out = cli("generate", "-m", MODEL, "-p", prompt, "-n", 40, "--temp", 0, "-q", *args).decode()
            got = model.generate(prompt, max_tokens=40, steer=spec)
            assert out == prompt + got + "\n", (prompt, args)
            assert "".join(model.generate(prompt, max_tokens=40, steer=spec, stream=True)) == got
            texts[prompt, c] = got
    for c in (1, 2):  # each steering changed the text of at least one prompt
        assert any(texts[p, c] != texts[p, 0] for p in PROMPTS[:2]), cases[c][0]
    g = model.generate(PROMPTS[0], max_tokens=100, stream=True)  # stopped early by the consumer
    first = [next(g), next(g)]
    g.close()
    assert "".join(first) == model.generate(PROMPTS[0], max_tokens=2)
    model.generate(PROMPTS[0], max_tokens=5, stream=True)  # never iterated: nothing runs, nothing leaks
    j = json.load(open(os.path.join(CASES, "the_cat.json")))
    text, ids = model.generate(j["prompt"], max_tokens=64, return_tokens=True)
    assert ids.tolist() == j["greedy64_token_ids"]


def test_sampling_seeded(model):
    a = model.generate("The cat", max_tokens=30, temperature=1.0, seed=7)
    assert a == model.generate("The cat", max_tokens=30, temperature=1.0, seed=7)
    assert a != model.generate("The cat", max_tokens=30, temperature=1.0, seed=8)


def test_capture_equal_cli(model, tmp_path):
    v, path = _vectors(tmp_path, 3)
    for args, spec in [([], None), (["--steer", path + ":resid_post:1:2"], steer.Add(path, "resid_post", [1], 2.0))]:
        cap = model.capture(PROMPTS, sites=["resid_post", "attn_out", "mlp_act"], layers="all", batch_size=2,
                            steer=spec)
        assert cap.lengths.tolist() == [len(model.tokenize(p)) for p in PROMPTS]
        for i, p in enumerate(PROMPTS):
            out = tmp_path / "cap.safetensors"
            cli("capture", "-m", MODEL, "-p", p, "--sites", "resid_post,attn_out,mlp_act", "--layers", "all",
                "-o", out, *args)
            ref, _ = steer.read_safetensors(out)
            n = cap.lengths[i]
            for (s, l), a in cap.items():
                assert a.shape == (3, max(cap.lengths), 172 if s == "mlp_act" else 64)
                assert a[i, :n].tobytes() == ref["%s.%d" % (s, l)].tobytes(), (p, s, l)
                assert not a[i, n:].any()
    # streamed into a file: the same numbers
    f = tmp_path / "big.safetensors"
    cap2 = model.capture(PROMPTS, sites=["resid_post"], layers=[2, 4], batch_size=1, to=f)
    cap3 = model.capture(PROMPTS, sites=["resid_post"], layers=[2, 4], batch_size=3)
    t, _ = steer.read_safetensors(f)
    assert t["lengths"].tolist() == cap3.lengths.tolist()
    for k in cap3:
        assert np.array_equal(cap2[k], cap3[k]) and np.array_equal(t["%s.%d" % k], cap3[k])


def test_hook_add_equals_declarative_add(model):
    rng = np.random.default_rng(5)
    v = rng.standard_normal(64).astype(np.float32)
    ref = model.logits(PROMPTS[0], steer=steer.Add(v, site="resid_post", layers=[2], alpha=3.0))
    seen = []

    def add(acts, pos):
        seen.append((acts.shape, pos.tolist()))
        acts += np.float32(3.0) * v

    with model.add_hook("resid_post", 2, add) as h:
        got = model.logits(PROMPTS[0])
        assert h.calls == 1 and seen == [((5, 64), [0, 1, 2, 3, 4])]
        gen_hook = model.generate(PROMPTS[0], max_tokens=12)
    assert got.tobytes() == ref.tobytes()
    assert gen_hook == model.generate(PROMPTS[0], max_tokens=12, steer=steer.Add(v, "resid_post", [2], 3.0))
    assert model.logits(PROMPTS[0]).tobytes() != ref.tobytes()  # removed
    # zero-copy: a hook that zeroes the block output of the last layer
    h = model.add_hook("resid_post", 4, lambda a: a.fill(0))
    z = model.logits("The cat")
    h.remove()
    assert np.allclose(z, z[0]) and np.ptp(z[0]) == 0  # every row: the head of a zero state


def test_positions_and_patch(model):
    v = np.ones(64, np.float32)
    ids = model.tokenize(PROMPTS[1])
    base = model.logits(ids)
    for pos, first in [(5, 5), (slice(3, 6), 3), (slice(7, None), 7), ([4, 9], 4), (-1, len(ids) - 1),
                       (slice(-2, None), len(ids) - 2)]:
        got = model.logits(ids, steer=steer.Add(v, "resid_mid", [1], 2.0, positions=pos))
        diff = np.abs(got - base).max(axis=1) > 0
        assert not diff[:first].any() and diff[first], pos  # causal: rows before the first position unchanged
    # patch every position with the activations of the same prompt: no change
    cap = model.capture([ids], sites=["resid_post"], layers=[2])
    got = model.logits(ids, steer=steer.Patch(cap["resid_post", 2][0], "resid_post", [2]))
    assert np.abs(got - base).max() < 1e-5


def test_vectors_files_and_arithmetic(tmp_path):
    rng = np.random.default_rng(1)
    a = steer.Vectors({("resid_post", l): rng.standard_normal(64).astype(np.float32) for l in (1, 2)})
    a["attn_out", 0] = rng.standard_normal((3, 64)).astype(np.float32)
    b = steer.Vectors({("resid_post", 1): np.ones(64, np.float32)})
    s = 2 * a - b
    assert np.array_equal(s["resid_post", 1], (2 * a["resid_post", 1]) - 1)
    assert np.array_equal(s["attn_out", 0], 2 * a["attn_out", 0])
    n = a.normalized()
    assert np.allclose(np.linalg.norm(n["resid_post", 2]), 1, atol=1e-6)
    p = tmp_path / "a.safetensors"
    a.save(p)
    back = steer.Vectors.load(p)
    assert back.keys() == a.keys() and all(np.array_equal(back[k], a[k]) for k in a.keys())
    g = tmp_path / "a.gguf"
    a.select(sites="resid_post").save(g)
    back = steer.Vectors.load(g)
    assert back.keys() == [("resid_post", 1), ("resid_post", 2)]
    assert np.array_equal(back["resid_post", 2], a["resid_post", 2])
    arr = np.asarray(back["resid_post", 1])
    assert arr.dtype == np.float32 and arr.flags.writeable and arr.flags.c_contiguous


def test_returned_arrays_interop(model):
    L = model.logits("The cat")
    assert L.flags.c_contiguous and L.flags.owndata and np.asarray(L) is L
    cap = model.capture(["The cat"], layers=[0])
    assert np.asarray(cap["resid_post", 0]).flags.c_contiguous


def test_cpu_info_matches_the_cli():
    """steer.cpu_info() says what `steer --version` of the same build says
    (each reads libsteer's choice independently: the CLI in its own process)."""
    info = steer.cpu_info()
    line = cli("--version").decode().splitlines()[1]
    want = "kernel path: %s (CPU features: %s); quantized weights: %s precision (%s dot products)" % (
        info["path"], info["features"], info["precision"], info["quant_path"])
    assert line == want
    assert info["path"] in ("scalar", "avx2", "avx512", "avx512bf16")
    assert info["quant_path"] in ("scalar", "avx2", "avxvnni", "avx512vnni")
