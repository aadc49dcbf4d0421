#!/usr/bin/python3
"""PyTorch peer for the cross-dataset protocols in docs/benchmarks.md: a careful log-mel CNN of the kind a demanding
Python user would write, trained and scored on the same files as `hybrid train`, so the two can be compared.

Protocols:

  fsdd-to-sc FSDD_DIR SC_DIR: train on FSDD's official training part (recordings/{digit}_{speaker}_{index}.wav with
      index 5-49, all speakers in the folder); 10 % of each digit's training recordings (rounded, drawn with the seed)
      are held out as the validation part for model selection. The selected model scores the Speech Commands digit
      clips of SC_DIR (every clip under zero/ ... nine/, label zero=0 ... nine=9; 165 in speech-commands-dev), the
      headline `accuracy`, and FSDD's official test part (index 0-4), `fsdd_test`.
  sc35 SC_DIR: the 35 words of SC_DIR (WORD/SPEAKER_nohash_N.wav, classes in alphabetical order), its own
      speaker-disjoint lists: train on every clip in neither list, select on validation_list.txt, report on
      testing_list.txt.

Features (computed on the fly, each batch): files read with soundfile as float32 in [-1, 1), mixed to mono, resampled
to the protocol's rate with scipy's polyphase filter (resample_poly, its default Kaiser window), then zero-padded or
cut, centred, to a window of 1.024 s. Power mel spectrogram from torchaudio.transforms.MelSpectrogram (periodic Hann,
centred frames with reflect padding, Slaney mel scale and area normalisation as librosa's defaults, 0 Hz to Nyquist),
10 log10(max(mel, 1e-10)) clamped to 80 dB below the clip's maximum, then per-utterance normalisation: each mel band
minus its mean over the clip's frames, divided by its standard deviation (+1e-5).
  both protocols: 8 kHz, window 8,192 samples, n_fft 512, hop 128, 40 mels -> 40 x 65 (the shape of Hybrid's
      logmel-fsdd input to cnn2d, so that a comparison is one of training rather than of input).
  sc35 --rate 16000: 16 kHz, window 16,384 samples, n_fft 1,024, hop 256, 40 mels -> 40 x 65 (the same 64 ms frames
      and 16 ms hop with the 4-8 kHz band kept). 8 kHz is the default because the 4-8 kHz band bought nothing on the
      validation part: 20-epoch runs, seed 0, selected validation accuracy 0.7147 at 8 kHz and 0.7034 at 16 kHz
      (354 clips; the test part was not looked at).

Augmentation, training only, drawn afresh each epoch (numpy Generator and torch generator seeded from --seed):
  speed perturbation: speed k/100 with k uniform in 90..110, by resampling (resample_poly, up 100, down k: tempo
      and pitch together, as sox speed);
  random time shift: the clip is placed in the window at centre + s, s uniform in +-0.25 s (a clip shorter than the
      window stays wholly inside it, a longer one is cut there);
  additive noise with probability 0.8: white, pink or brown Gaussian noise (equally likely) over the whole window at
      an SNR uniform in 5..35 dB relative to the clip's mean power (taken over the clip before padding);
  SpecAugment on the normalised log-mel (torchaudio FrequencyMasking(8) and TimeMasking(10), each applied twice,
      masks drawn per example, masked values 0 = the band's mean).
Evaluation (validation and test) uses the centred clip with none of these.

Network (98,682 parameters for 10 classes, 101,907 for 35): four blocks of Conv2d 3x3 'same' without bias (16, 32,
64, 128 channels), BatchNorm2d and ReLU, with MaxPool2d 2 after the first three (40 x 65 -> 5 x 8); global average
pooling; Dropout 0.3; Linear to the classes.
Training: AdamW (weight decay 0.01, betas 0.9/0.999), one-cycle schedule (torch.optim.lr_scheduler.OneCycleLR, peak
3e-3, 30 % warm-up, cosine annealing, div_factor 25, final_div_factor 1e4), cross-entropy with label smoothing 0.1,
batch 64 (shuffled each epoch, last batch shorter), 40 epochs for digits and 60 for sc35 unless --epochs says
otherwise. After each epoch the model is scored on the validation part; the state with the highest validation
accuracy (ties: lower validation loss, then the later epoch) is the one tested. The hyper-parameters were fixed
before any test score was seen; none were tuned on a test part.

Determinism: --seed N seeds Python's random, numpy and torch, and every draw above comes from generators seeded from
it; torch.use_deterministic_algorithms is on. Two runs with one seed and one --threads give the same figures; another
--threads may change the order of floating-point sums, and with it the figures slightly.

Usage: /usr/bin/python3 scripts/baselines/logmel_cnn_torch.py (fsdd-to-sc FSDD_DIR SC_DIR | sc35 SC_DIR)
       [--seed N] [--epochs E] [--threads T] [--rate 8000|16000]
(defaults: seed 0, 40 epochs for fsdd-to-sc and 60 for sc35, 2 threads, sc35 at 8 kHz)
Progress goes to stderr; stdout is one JSON line:
{"protocol": ..., "framework": "pytorch", "torch": ..., "torchaudio": ..., "seed": ..., "epochs": ..., "threads": ...,
 "sample_rate": ..., "accuracy": ..., "n": ..., "per_class": {label: accuracy},
 "validation": {"accuracy", "loss", "epoch", "n"} (the selected epoch), "train_n": ..., "seconds": ...}
plus "fsdd_test" {"accuracy", "n", "per_class"} for fsdd-to-sc. Needs Debian 12's python3-torch, python3-torchaudio,
python3-soundfile, python3-scipy and python3-numpy (apt-get install), nothing else.
"""
import argparse
import json
import math
import os
import random
import re
import sys
import time

import numpy as np
import soundfile
import torch
import torchaudio
from scipy.signal import resample_poly
from torch import nn

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FSDD_NAME = re.compile(r"^(\d)_(.+)_(\d+)\.wav$")

DIGITS = dict(sr=8000, window=8192, n_fft=512, hop=128, n_mels=40, epochs=40)
SC35 = {16000: dict(sr=16000, window=16384, n_fft=1024, hop=256, n_mels=40, epochs=60),
        8000: dict(DIGITS, epochs=60)}

BATCH = 64
PEAK_LR = 3e-3
WEIGHT_DECAY = 0.01
PCT_START = 0.3
LABEL_SMOOTHING = 0.1
DROPOUT = 0.3
SPEED_RANGE = (90, 110)       # speed factor k / 100
SHIFT_S = 0.25                # maximum time shift either way, seconds
NOISE_P = 0.8
SNR_DB = (5.0, 35.0)
TOP_DB = 80.0
FREQ_MASK, TIME_MASK, MASKS = 8, 10, 2
VALIDATION_FRACTION = 0.1


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data

def read(path: str, sr: int) -> np.ndarray:
    data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    wave = data.mean(axis=1)
    if rate != sr:
        g = math.gcd(rate, sr)
        wave = resample_poly(wave, sr // g, rate // g)
    return np.ascontiguousarray(wave, dtype=np.float32)


def fsdd_items(folder: str):
    """(path, digit, speaker, index) for every recording, sorted by name."""
    recordings = os.path.join(folder, "recordings")
    items = []
    for name in sorted(os.listdir(recordings)):
        m = FSDD_NAME.match(name)
        if m:
            items.append((os.path.join(recordings, name), int(m.group(1)), m.group(2), int(m.group(3))))
    if not items:
        raise SystemExit(f"logmel_cnn_torch: no FSDD recordings under {recordings}")
    return items


def sc_words(folder: str):
    return sorted(d for d in os.listdir(folder)
                  if os.path.isdir(os.path.join(folder, d)) and not d.startswith("_"))


def sc_files(folder: str, words):
    """Relative paths WORD/NAME.wav of every clip of the given words, sorted."""
    out = []
    for w in words:
        for name in sorted(os.listdir(os.path.join(folder, w))):
            if name.endswith(".wav"):
                out.append(f"{w}/{name}")
    return out


def read_list(folder: str, name: str):
    with open(os.path.join(folder, name)) as f:
        return {line.strip() for line in f if line.strip()}


class Part:
    """Waveforms (variable length, at the protocol's rate) and integer labels."""

    def __init__(self, waves, labels):
        self.waves = waves
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self):
        return len(self.waves)


def load_part(paths, labels, sr) -> Part:
    return Part([read(p, sr) for p in paths], labels)


# ---------------------------------------------------------------- waveform side

def place(wave: np.ndarray, window: int, offset: int) -> np.ndarray:
    """Put `wave` into a zero window so that its centre sits at window's centre + offset (cut where it falls out)."""
    out = np.zeros(window, dtype=np.float32)
    start = (window - len(wave)) // 2 + offset      # where wave[0] lands
    lo, hi = max(start, 0), min(start + len(wave), window)
    if hi > lo:
        out[lo:hi] = wave[lo - start:hi - start]
    return out


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1 / f^exponent (0 white, 1 pink, 2 brown), unit power."""
    white = rng.standard_normal(n)
    if exponent:
        spectrum = np.fft.rfft(white)
        f = np.arange(len(spectrum), dtype=np.float64)
        f[0] = 1.0
        spectrum /= f ** (exponent / 2)
        spectrum[0] = 0.0
        white = np.fft.irfft(spectrum, n)
    return (white / (np.sqrt(np.mean(white ** 2)) + 1e-12)).astype(np.float32)


class Augmenter:
    def __init__(self, sr: int, window: int):
        self.sr, self.window = sr, window
        self.shift = int(SHIFT_S * sr)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        k = int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1))
        if k != 100:      # speed k/100: length * 100/k
            g = math.gcd(100, k)
            wave = resample_poly(wave, 100 // g, k // g).astype(np.float32)
        lo, hi = -self.shift, self.shift
        if len(wave) <= self.window:    # keep a short clip wholly inside the window
            room = (self.window - len(wave)) // 2
            lo, hi = max(lo, -room), min(hi, room)
        offset = int(rng.integers(lo, hi + 1)) if hi > lo else 0
        power = float(np.mean(wave.astype(np.float64) ** 2))
        out = place(wave, self.window, offset)
        if rng.random() < NOISE_P and power > 0:
            snr = rng.uniform(*SNR_DB)
            noise = coloured_noise(self.window, float(rng.integers(0, 3)), rng)
            out += noise * np.float32(math.sqrt(power / 10 ** (snr / 10)))
        return out


def batch_waves(part: Part, index, window: int, augment=None, rng=None) -> torch.Tensor:
    if augment is None:
        rows = [place(part.waves[i], window, 0) for i in index]
    else:
        rows = [augment(part.waves[i], rng) for i in index]
    return torch.from_numpy(np.stack(rows))


# ---------------------------------------------------------------- features

class Features(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg["sr"], n_fft=cfg["n_fft"], hop_length=cfg["hop"], n_mels=cfg["n_mels"], f_min=0.0,
            f_max=cfg["sr"] / 2, power=2.0, center=True, pad_mode="reflect", norm="slaney", mel_scale="slaney")
        self.freq_mask = torchaudio.transforms.FrequencyMasking(FREQ_MASK, iid_masks=True)
        self.time_mask = torchaudio.transforms.TimeMasking(TIME_MASK, iid_masks=True)

    @torch.no_grad()
    def forward(self, waves: torch.Tensor, spec_augment: bool) -> torch.Tensor:
        db = 10.0 * torch.log10(torch.clamp(self.mel(waves), min=1e-10))          # [B, mels, frames]
        peak = db.amax(dim=(1, 2), keepdim=True)
        db = torch.maximum(db, peak - TOP_DB)
        mean = db.mean(dim=2, keepdim=True)
        std = db.std(dim=2, keepdim=True, unbiased=False)
        x = ((db - mean) / (std + 1e-5)).unsqueeze(1)                             # [B, 1, mels, frames]
        if spec_augment:
            for _ in range(MASKS):
                x = self.freq_mask(x)
            for _ in range(MASKS):
                x = self.time_mask(x)
        return x


# ---------------------------------------------------------------- model

class Net(nn.Module):
    def __init__(self, classes: int):
        super().__init__()

        def block(cin, cout, pool):
            layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(2))
            return layers

        self.body = nn.Sequential(*block(1, 16, True), *block(16, 32, True), *block(32, 64, True),
                                  *block(64, 128, False), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(DROPOUT), nn.Linear(128, classes))

    def forward(self, x):
        return self.head(self.body(x))


# ---------------------------------------------------------------- training

@torch.no_grad()
def predict(model, features, part: Part, window: int):
    model.eval()
    logits = []
    for b in range(0, len(part), 256):
        index = range(b, min(b + 256, len(part)))
        logits.append(model(features(batch_waves(part, index, window), spec_augment=False)))
    logits = torch.cat(logits)
    loss = nn.functional.cross_entropy(logits, torch.from_numpy(part.labels)).item()
    return logits.argmax(dim=1).numpy(), loss


def score(pred: np.ndarray, labels: np.ndarray, names):
    per_class = {}
    for c, name in enumerate(names):
        mask = labels == c
        if mask.any():
            per_class[name] = round(float((pred[mask] == c).mean()), 4)
    return round(float((pred == labels).mean()), 4), per_class


def train(cfg, train_part: Part, val_part: Part, classes: int, epochs: int, seed: int):
    rng = np.random.default_rng(seed)
    shuffle = torch.Generator().manual_seed(seed)
    features = Features(cfg)
    model = Net(classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PEAK_LR, weight_decay=WEIGHT_DECAY)
    steps = math.ceil(len(train_part) / BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=PEAK_LR, epochs=epochs, steps_per_epoch=steps,
                                                   pct_start=PCT_START)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    augment = Augmenter(cfg["sr"], cfg["window"])
    labels = torch.from_numpy(train_part.labels)
    best = None      # (accuracy, -loss, epoch, state)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_part), generator=shuffle).tolist()
        total, count = 0.0, 0
        for b in range(0, len(order), BATCH):
            index = order[b:b + BATCH]
            x = features(batch_waves(train_part, index, cfg["window"], augment, rng), spec_augment=True)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), labels[index])
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
            count += len(index)
        pred, val_loss = predict(model, features, val_part, cfg["window"])
        val_acc = float((pred == val_part.labels).mean())
        key = (val_acc, -val_loss, epoch)
        if best is None or key > best[:3]:
            best = key + ({k: v.detach().clone() for k, v in model.state_dict().items()},)
        log(f"epoch {epoch:3d}  train loss {total / count:.4f}  val loss {val_loss:.4f}  val acc {val_acc:.4f}"
            f"  {time.perf_counter() - start:.1f} s")
    model.load_state_dict(best[3])
    return model, features, {"accuracy": round(best[0], 4), "loss": round(-best[1], 4), "epoch": best[2],
                             "n": len(val_part)}


# ---------------------------------------------------------------- protocols

def fsdd_to_sc(args):
    cfg = DIGITS
    items = fsdd_items(args.dirs[0])
    train_items = [it for it in items if it[3] >= 5]
    test_items = [it for it in items if it[3] < 5]
    split = np.random.default_rng([args.seed, 1])
    val_set = set()
    for d in range(10):
        paths = sorted(it[0] for it in train_items if it[1] == d)
        take = max(1, round(VALIDATION_FRACTION * len(paths)))
        val_set.update(paths[i] for i in split.permutation(len(paths))[:take])
    fit = [it for it in train_items if it[0] not in val_set]
    val = [it for it in train_items if it[0] in val_set]
    sc_dir = args.dirs[1]
    sc = sc_files(sc_dir, DIGIT_WORDS)
    log(f"fsdd-to-sc: {len(fit)} training, {len(val)} validation, {len(test_items)} FSDD test, {len(sc)} SC digits")
    load = lambda its: load_part([it[0] for it in its], [it[1] for it in its], cfg["sr"])
    fit_part, val_part, test_part = load(fit), load(val), load(test_items)
    sc_part = load_part([os.path.join(sc_dir, p) for p in sc], [DIGIT_WORDS.index(p.split("/")[0]) for p in sc],
                        cfg["sr"])
    model, features, chosen = train(cfg, fit_part, val_part, 10, args.epochs or cfg["epochs"], args.seed)
    names = [str(d) for d in range(10)]
    sc_acc, sc_per = score(predict(model, features, sc_part, cfg["window"])[0], sc_part.labels, DIGIT_WORDS)
    fs_acc, fs_per = score(predict(model, features, test_part, cfg["window"])[0], test_part.labels, names)
    return {"accuracy": sc_acc, "n": len(sc_part), "per_class": sc_per,
            "fsdd_test": {"accuracy": fs_acc, "n": len(test_part), "per_class": fs_per},
            "validation": chosen, "train_n": len(fit_part)}, cfg


def sc35(args):
    cfg = SC35[args.rate]
    folder = args.dirs[0]
    words = sc_words(folder)
    files = sc_files(folder, words)
    testing, validation = read_list(folder, "testing_list.txt"), read_list(folder, "validation_list.txt")
    parts = {"train": [], "val": [], "test": []}
    for p in files:
        parts["test" if p in testing else "val" if p in validation else "train"].append(p)
    log(f"sc35: {len(words)} words, {len(parts['train'])} training, {len(parts['val'])} validation, "
        f"{len(parts['test'])} test")
    load = lambda ps: load_part([os.path.join(folder, p) for p in ps], [words.index(p.split("/")[0]) for p in ps],
                                cfg["sr"])
    fit_part, val_part, test_part = load(parts["train"]), load(parts["val"]), load(parts["test"])
    model, features, chosen = train(cfg, fit_part, val_part, len(words), args.epochs or cfg["epochs"], args.seed)
    acc, per = score(predict(model, features, test_part, cfg["window"])[0], test_part.labels, words)
    return {"accuracy": acc, "n": len(test_part), "per_class": per, "validation": chosen,
            "train_n": len(fit_part)}, cfg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("protocol", choices=["fsdd-to-sc", "sc35"])
    parser.add_argument("dirs", nargs="+", metavar="DIR")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rate", type=int, default=8000, choices=[8000, 16000], help="sc35's sample rate")
    args = parser.parse_args()
    wanted = 2 if args.protocol == "fsdd-to-sc" else 1
    if args.protocol == "fsdd-to-sc" and args.rate != 8000:
        parser.error("--rate is for sc35 (the digits are always at 8 kHz)")
    if len(args.dirs) != wanted:
        parser.error(f"{args.protocol} takes {wanted} folder(s)")
    if args.threads < 1 or (args.epochs is not None and args.epochs < 1):
        parser.error("--threads and --epochs must be at least 1")
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    start = time.perf_counter()
    result, cfg = (fsdd_to_sc if args.protocol == "fsdd-to-sc" else sc35)(args)
    out = {"protocol": args.protocol, "framework": "pytorch", "torch": torch.__version__,
           "torchaudio": torchaudio.__version__, "seed": args.seed, "epochs": args.epochs or cfg["epochs"],
           "threads": args.threads, "sample_rate": cfg["sr"]}
    out.update(result)
    out["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
