"""Steering quickstart (the same cells as steering_quickstart.ipynb).

Extracts a "happy minus sad" vector from two small prompt sets, sweeps the
steering strength over every layer, plots the effect with matplotlib and
generates with the chosen setting. Runs in seconds on the bundled
stories260K. Usage: python3 examples/steering_quickstart.py (writes into
$STEER_QUICKSTART_OUT, default out/quickstart; needs `import steer`: see
docs/PYTHON.md). Cells are marked "# %%"; the notebook holds the same cells
(python/tests/test_example.py checks both)."""
# %% setup
import os
import sys

import matplotlib

if "ipykernel" not in sys.modules:  # a script: draw into files only
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import steer  # noqa: E402

# the repository: $STEER_REPO, or found from this file / the working directory (a notebook runs in examples/)
_here = os.path.dirname(os.path.abspath(globals().get("__file__", "steering_quickstart.py")))
REPO = next(d for d in (os.environ.get("STEER_REPO", ""), os.path.dirname(_here), os.getcwd(),
                        os.path.dirname(os.getcwd())) if d and os.path.isdir(os.path.join(d, "models", "stories260K")))
OUT = os.environ.get("STEER_QUICKSTART_OUT", os.path.join(REPO, "out", "quickstart"))
os.makedirs(OUT, exist_ok=True)
m = steer.Model.load(os.path.join(REPO, "models", "stories260K", "stories260K.bin"))
print(m)

# %% extract a vector: mean activation of happy prompts minus sad ones, every layer
pos = ["Lily was very happy", "Tom smiled and was happy", "The happy dog played in the sun",
       "She laughed, she was so happy"]
neg = ["Lily was very sad", "Tom cried and was sad", "The sad dog sat in the rain", "She cried, she was so sad"]
vec = steer.extract.mean_diff(m, pos, neg, sites=["resid_post"], layers="all")
vec.save(os.path.join(OUT, "happy.safetensors"))
print(vec, {k: round(float(n), 3) for k, n in vec.norms().items()})


# %% a score: log p(" happy") - log p(" sad") after a neutral prompt (teacher-forced)
def logprob(prompt, cont, spec=None):
    n0 = len(m.tokenize(prompt))
    ids = m.tokenize(prompt + cont)
    lg = m.logits(ids, steer=spec).astype(np.float64)
    lp = lg - np.log(np.exp(lg - lg.max(1, keepdims=True)).sum(1, keepdims=True)) - lg.max(1, keepdims=True)
    return float(sum(lp[p - 1, ids[p]] for p in range(n0, len(ids))))


def score(spec=None, prompt="One day the girl felt"):
    return logprob(prompt, " happy", spec) - logprob(prompt, " sad", spec)


# %% sweep strength x layer
alphas = [0.0, 0.5, 1.0, 2.0, 4.0]
grid = np.array([[score(steer.Add(vec, site="resid_post", layers=[l], alpha=a)) for a in alphas]
                 for l in range(m.n_layer)])
print("score (layers x alphas):\n", np.round(grid, 2))

# %% plot
fig, ax = plt.subplots(figsize=(6, 4))
for l in range(m.n_layer):
    ax.plot(alphas, grid[l], marker="o", label="layer %d" % l)
ax.set_xlabel("alpha (steering strength)")
ax.set_ylabel('log p(" happy") - log p(" sad")')
ax.set_title("stories260K: steering with the happy - sad vector")
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(OUT, "quickstart_sweep.png"), dpi=100)
plt.show()

# %% generate with the layer that moves the score most at alpha 1 (stronger breaks this tiny model's text)
best = int(np.argmax(grid[:, alphas.index(1.0)]))
print("best layer at alpha 1:", best)
print("plain:  ", m.generate("One day the girl felt", max_tokens=40))
with m.steering(steer.Add(vec, site="resid_post", layers=[best], alpha=1.0)):
    print("steered:", m.generate("One day the girl felt", max_tokens=40))
