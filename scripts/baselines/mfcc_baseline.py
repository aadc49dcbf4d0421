#!/usr/bin/python3
"""Baselines for docs/benchmarks.md: MFCC statistics + scikit-learn on a dataset folder in the Speech Commands or
UrbanSound8K layout (the figures `hybrid train` is compared with; Hybrid itself needs no Python).

MFCCs follow librosa 0.10's defaults (sr 22,050, n_fft 2048, hop 512, periodic Hann, centred with zero padding,
128 Slaney mels, power_to_db ref 1 amin 1e-10 top_db 80, type-2 orthonormal DCT) re-implemented in numpy, because
librosa is not installed here; `--check` compares them with the librosa 0.10.2 reference arrays under
$HYBRID_LIBROSA_REFERENCE (or ../shared/reference/librosa-0.10.2). Files are read with soundfile, mixed to mono and
resampled to 22,050 Hz with scipy's polyphase filter (librosa.load uses soxr), over their whole length.

  speech-commands DIR: logistic regression on 40 MFCC means and standard deviations; the official split
      (validation_list.txt, testing_list.txt); the test accuracy.
  urbansound8k DIR: the write-up's recipe, 40 MFCC means into an MLP with two hidden layers of 256; 10-fold (every
      predefined fold) mean and standard deviation.

Usage: /usr/bin/python3 scripts/baselines/mfcc_baseline.py (--check | speech-commands DIR | urbansound8k DIR)
"""
import csv
import json
import math
import os
import sys
from fractions import Fraction

import numpy as np
import soundfile
from scipy.signal import resample_poly

SR, N_FFT, HOP, N_MELS = 22050, 2048, 512, 128


def hz_to_mel(f):
    f = np.asanyarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def mel_to_hz(m):
    m = np.asanyarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filters(sr=SR, n_fft=N_FFT, n_mels=N_MELS):
    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    weights = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


def dct_ortho(n_out, n_in):
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis


MEL = mel_filters()
WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)


def mfcc(y, n_mfcc):
    """[n_mfcc, frames] as librosa.feature.mfcc(y=y, sr=22050, n_mfcc=n_mfcc) with its defaults."""
    y = np.pad(y.astype(np.float32), (N_FFT // 2, N_FFT // 2))
    frames = 1 + (len(y) - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(y[index] * WINDOW, axis=1)) ** 2
    mel = MEL @ spectrum.T
    db = 10.0 * np.log10(np.maximum(1e-10, mel))
    db = np.maximum(db, db.max() - 80.0)
    return dct_ortho(n_mfcc, N_MELS) @ db


def load(path):
    y, sr = soundfile.read(path, dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if sr != SR:
        ratio = Fraction(SR, sr).limit_denominator(1000)
        y = resample_poly(y, ratio.numerator, ratio.denominator).astype(np.float32)
    return y


def check():
    root = os.environ.get("HYBRID_LIBROSA_REFERENCE") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "reference", "librosa-0.10.2")
    ref = json.load(open(os.path.join(root, "mix_22k.json")))
    y, sr = soundfile.read(os.path.join(root, ref["wav"]), dtype="float32")
    assert sr == SR
    expected = np.array(ref["mfcc"]["data"]).reshape(ref["mfcc"]["shape"])
    got = mfcc(y, expected.shape[0])
    print("mfcc of mix_22k vs librosa 0.10.2: max abs difference %.2e (values up to %.1f)" % (np.abs(got - expected).max(), np.abs(expected).max()))


def speech_commands(root):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.pipeline import make_pipeline
    lists = {}
    for name, part in (("validation_list.txt", "validation"), ("testing_list.txt", "test")):
        for line in open(os.path.join(root, name)):
            if line.strip():
                lists[line.strip()] = part
    rows = {"train": ([], []), "validation": ([], []), "test": ([], [])}
    words = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith(("_", ".")))
    for label, word in enumerate(words):
        for name in sorted(os.listdir(os.path.join(root, word))):
            if name.lower().endswith(".wav"):
                m = mfcc(load(os.path.join(root, word, name)), 40)
                x, y = rows[lists.get(word + "/" + name, "train")]
                x.append(np.concatenate([m.mean(axis=1), m.std(axis=1)]))
                y.append(label)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(np.array(rows["train"][0]), rows["train"][1])
    accuracy = model.score(np.array(rows["test"][0]), rows["test"][1])
    print("speech commands: logistic regression on 40 MFCC means and standard deviations, official split: "
          "train %d, test %d, test accuracy %.4f" % (len(rows["train"][1]), len(rows["test"][1]), accuracy))


def urbansound8k(root):
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.pipeline import make_pipeline
    xs, ys, folds = [], [], []
    classes = {}
    with open(os.path.join(root, "metadata", "UrbanSound8K.csv")) as f:
        for row in csv.DictReader(f):
            path = os.path.join(root, "audio", "fold" + row["fold"], row["slice_file_name"])
            xs.append(mfcc(load(path), 40).mean(axis=1))
            ys.append(classes.setdefault(row["class"], len(classes)))
            folds.append(int(row["fold"]))
    xs, ys, folds = np.array(xs), np.array(ys), np.array(folds)
    accuracies = []
    for k in sorted(set(folds)):
        model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=500, random_state=0))
        model.fit(xs[folds != k], ys[folds != k])
        accuracies.append(model.score(xs[folds == k], ys[folds == k]))
    print("urbansound8k: MLP 256-256 on 40 MFCC means, %d-fold: %s; mean %.4f, standard deviation %.4f"
          % (len(accuracies), " ".join("%.3f" % a for a in accuracies), np.mean(accuracies), np.std(accuracies, ddof=1)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:
        check()
    elif sys.argv[1:2] == ["speech-commands"]:
        speech_commands(sys.argv[2])
    elif sys.argv[1:2] == ["urbansound8k"]:
        urbansound8k(sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)
