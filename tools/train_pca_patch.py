"""Learn transforms for pca-patch bitstream 2 from a training corpus, and measure them.

Training images are only those that ship with the dependencies (scikit-image's
bundled photos and textures, scikit-learn's two sample images); never Kodak,
which is the test set. For each training image the bitstream-2 encoder is run
at a few quantizer steps; the luma leaves it chose are replayed in decoding
order to recover their intra-prediction residuals, which are grouped by block
size and by prediction-mode class. Per group the script computes the KLT
(eigenvectors of the residual covariance) and reports, on held-out images,
the transform coding gain of the KLT over the DCT of that size.

    .venv/bin/python tools/train_pca_patch.py             # measure, print a table
    .venv/bin/python tools/train_pca_patch.py --out FILE  # also write the KLTs (.npz)

Deterministic: fixed images, fixed steps, LAPACK's eigh on float64 sums.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from numba import njit

from imcompress.pca_patch._intra import SCALE
from imcompress.pca_patch._tree import leaf_prediction, mark_leaf

#: scikit-image data (bundled) used for training; scikit-learn's images are held out.
TRAIN = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "immunohistochemistry",
         "cat", "brick", "grass", "gravel", "camera")
QUALITIES = (30, 55)
#: Mode classes: planar/DC/CfL, and the angular modes in five bands of direction.
CLASS_OF_MODE = np.array([0, 0] + [1] * 5 + [2] * 6 + [3] * 7 + [4] * 6 + [5] * 5 + [1] * 4 + [0], dtype=np.int64)
N_CLASSES = 6


def _training_images():
    import skimage.data

    out = []
    for name in TRAIN:
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=2)
        out.append((name, np.ascontiguousarray(img[:, :, :3].astype(np.uint8))))
    return out


def _held_out_images():
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    return [(name.rsplit("/", 1)[-1], np.ascontiguousarray(img)) for name, img in zip(data.filenames, data.images)]


@njit(cache=True)
def _replay(src, rec, maps, log2max, out, classes, sizes, counts, class_of_mode):
    """Walk the leaves in decoding order, store each 4x4/8x8 leaf's residual (pixel units)."""
    h, w = src.shape
    done = np.zeros((h >> 2, w >> 2), dtype=np.bool_)
    scratch = np.zeros_like(maps)
    ref = np.empty(4 * 32 + 1, dtype=np.int64)
    n_out = 0
    root = 1 << log2max
    # an explicit stack replaces recursion: (y0, x0, log2n), children pushed in reverse z-order
    stack = np.empty((64, 3), dtype=np.int64)
    for ry in range(0, h, root):
        for rx in range(0, w, root):
            top = 0
            stack[0, 0], stack[0, 1], stack[0, 2] = ry, rx, log2max
            top = 1
            while top > 0:
                top -= 1
                y0, x0, log2n = stack[top, 0], stack[top, 1], stack[top, 2]
                n = 1 << log2n
                if maps[0, y0 >> 2, x0 >> 2] < log2n:
                    hh = n >> 1
                    for k in range(3, -1, -1):
                        stack[top, 0] = y0 + (k >> 1) * hh
                        stack[top, 1] = x0 + (k & 1) * hh
                        stack[top, 2] = log2n - 1
                        top += 1
                    continue
                mode = maps[1, y0 >> 2, x0 >> 2]
                pred = np.empty((n, n), dtype=np.int64)
                leaf_prediction(rec, done, y0, x0, n, log2n, mode, 0, rec, False, ref, pred)
                if log2n <= 3 and n_out < out.shape[0]:
                    for y in range(n):
                        for x in range(n):
                            out[n_out, y * n + x] = src[y0 + y, x0 + x] - pred[y, x] / SCALE
                    classes[n_out] = class_of_mode[mode]
                    sizes[n_out] = log2n
                    counts[log2n - 2, class_of_mode[mode]] += 1
                    n_out += 1
                mark_leaf(scratch, done, y0, x0, n, log2n, mode, 0, 0)
    return n_out


def residuals(images):
    """Residual blocks of the encoder's 4x4 and 8x8 luma leaves: {(log2n, class): (m, n*n) array}."""
    from imcompress.pca_patch._intra_codec import IntraEncoder
    from imcompress.pca_patch._quantize import CHROMA_FACTOR, quality_to_step

    groups: dict = {}
    for _, img in images:
        enc = IntraEncoder(img, chroma="420", speed=5)
        for q in QUALITIES:
            step = float(np.float32(quality_to_step(q)))
            res = enc.search(step, float(np.float32(step * CHROMA_FACTOR)), True)
            src, rec, maps = res.sources[0].full(), res.recs[0], res.maps[0]
            cap = src.size // 16 + 1
            out = np.zeros((cap, 64))
            classes = np.zeros(cap, dtype=np.int64)
            sizes = np.zeros(cap, dtype=np.int64)
            counts = np.zeros((2, N_CLASSES), dtype=np.int64)
            m = _replay(src, rec, maps, 5, out, classes, sizes, counts, CLASS_OF_MODE)
            for log2n in (2, 3):
                nn = (1 << log2n) ** 2
                for c in range(N_CLASSES):
                    sel = (sizes[:m] == log2n) & (classes[:m] == c)
                    if sel.any():
                        groups.setdefault((log2n, c), []).append(out[:m][sel, :nn])
    return {k: np.concatenate(v) for k, v in groups.items()}


def klt(blocks):
    """Rows: eigenvectors of the (uncentred) residual covariance, by decreasing variance."""
    cov = blocks.T @ blocks / max(len(blocks), 1)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(-vals, kind="stable")
    rows = vecs[:, order].T
    rows *= np.sign(rows[np.arange(rows.shape[0]), np.argmax(np.abs(rows), axis=1)])[:, None]
    return rows


def dct2(n):
    from imcompress.pca_patch._transform import dct_1d

    c = dct_1d(n)
    return np.einsum("ui,vj->uvij", c, c).reshape(n * n, n * n)


def coding_gain_db(blocks, rows):
    """Transform coding gain (arithmetic over geometric mean of coefficient variances), dB."""
    var = np.mean((blocks @ rows.T) ** 2, axis=0) + 1e-12
    return 10 * np.log10(np.mean(var) / np.exp(np.mean(np.log(var))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="write the learned KLTs to this .npz")
    args = ap.parse_args(argv)
    train = residuals(_training_images())
    test = residuals(_held_out_images())
    print("| block | mode class | training blocks | held-out blocks | coding gain DCT (dB) | KLT (dB) | KLT − DCT |")
    print("|---|---|---|---|---|---|---|")
    tables = {}
    for key in sorted(train):
        log2n, c = key
        if key not in test or len(train[key]) < 4 * train[key].shape[1]:
            continue
        rows = klt(train[key])
        tables[f"klt_{1 << log2n}_{c}"] = rows
        g_dct = coding_gain_db(test[key], dct2(1 << log2n))
        g_klt = coding_gain_db(test[key], rows)
        print(f"| {1 << log2n}x{1 << log2n} | {c} | {len(train[key])} | {len(test[key])} | {g_dct:.2f} | "
              f"{g_klt:.2f} | {g_klt - g_dct:+.2f} |")
    if args.out:
        np.savez_compressed(args.out, **tables)
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
