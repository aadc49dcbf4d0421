"""TEST-MATERIAL GENERATION ONLY (not part of Hybrid; Hybrid never runs Python).

Writes chroma-librosa-0.10.2.json: librosa 0.10.2's chroma filter banks for a set of parameter combinations
(librosa.filters.chroma with ctroct, octwidth incl. None, norm incl. None/inf/-inf/0/p, base_c), and
chroma_stft / estimate_tuning results for a 30 s harmonic signal at 22,050 Hz (n_fft 2048) whose formula is
repeated in ChromaReferenceTests.fs.

Run with Debian's python3 (numpy, scipy, numba) and librosa 0.10.2's source tree on the path, e.g. from a
checkout of github.com/librosa/librosa at tag 0.10.2:
    MIX_22K=/path/to/shared/reference/librosa-0.10.2/signals/mix_22k.wav \
    /usr/bin/python3 make_chroma_reference.py /path/to/librosa-0.10.2 [/path/to/shims]
where shims holds stand-ins for the optional packages librosa imports but these computations do not use
(lazy_loader, typing_extensions); audioread, soxr, pooch and msgpack are replaced by mocks below.
"""
import json
import os
import sys
from unittest import mock

sys.path[:0] = sys.argv[1:][::-1]
for name in ["audioread", "soxr", "pooch", "msgpack", "samplerate", "resampy"]:
    sys.modules[name] = mock.MagicMock()

import numpy as np  # noqa: E402
import librosa  # noqa: E402

assert librosa.__version__ == "0.10.2", librosa.__version__

SR = 22050
SECONDS = 30
DETUNE = 0.23  # fractions of a semitone above A440 tuning
# MIDI-like chords (semitones from A4), one every 2.5 s.
CHORDS = [[-9, -5, -2], [-7, -3, 0], [-4, 0, 3], [-12, -5, 4], [-2, 2, 5], [-9, -2, 3],
          [-14, -7, 0], [0, 4, 7], [-5, -1, 2], [-10, -3, 2], [-8, -1, 4], [-9, -5, 0]]


def signal():
    n = np.arange(SR * SECONDS, dtype=np.float64)
    y = np.zeros_like(n)
    seg = SR * SECONDS // len(CHORDS)
    for i, chord in enumerate(CHORDS):
        part = n[i * seg:(i + 1) * seg]
        for m in chord:
            f = 440.0 * 2.0 ** ((m + DETUNE) / 12.0)
            for h in range(1, 5):
                y[i * seg:(i + 1) * seg] += (0.3 / h) * np.sin(2.0 * np.pi * f * h * part / SR)
    return y.astype(np.float32)


def bank(sr, n_fft, n_chroma, tuning, ctroct, octwidth, norm, base_c):
    w = librosa.filters.chroma(sr=sr, n_fft=n_fft, n_chroma=n_chroma, tuning=tuning, ctroct=ctroct,
                               octwidth=octwidth, norm=norm, base_c=base_c, dtype=np.float64)
    enc = lambda v: None if v is None else ("inf" if v == np.inf else "-inf" if v == -np.inf else v)
    return {"sr": sr, "n_fft": n_fft, "n_chroma": n_chroma, "tuning": tuning, "ctroct": ctroct,
            "octwidth": octwidth, "norm": enc(norm), "base_c": base_c, "shape": list(w.shape),
            "data": [float("%.9g" % v) for v in w.ravel()]}


banks = [
    bank(22050, 64, 12, 0.0, 5.0, 2, 2, True),
    bank(22050, 64, 12, 0.3, 4.0, None, 2, True),
    bank(8000, 64, 12, -0.2, 5.0, 1.0, None, False),
    bank(8000, 64, 24, 0.0, 6.0, 3.0, np.inf, True),
    bank(22050, 64, 36, 0.1, 5.0, None, 1, False),
    bank(22050, 48, 7, 0.0, 3.5, 0.5, -np.inf, True),
    bank(16000, 64, 12, 0.0, 5.0, 2, 0, True),
    bank(44100, 64, 12, 0.49, 5.5, 2, 3, True),
]

y = signal()
S = np.abs(librosa.stft(y, n_fft=2048)) ** 2
tuning_power = float(librosa.estimate_tuning(S=S, sr=SR, bins_per_octave=12))
tuning_y = float(librosa.estimate_tuning(y=y, sr=SR))
chroma = librosa.feature.chroma_stft(y=y, sr=SR, n_fft=2048)
chroma0 = librosa.feature.chroma_stft(y=y, sr=SR, n_fft=2048, tuning=0.0)
# The shared reference signal mix_22k (whose other features the librosa reference folder holds, with chroma at
# tuning 0): chroma_stft with librosa's default estimated tuning, for the genre schema's test.
from scipy.io import wavfile  # noqa: E402
mix_sr, mix = wavfile.read(os.environ["MIX_22K"])
mix = mix.astype(np.float32) / (32768.0 if mix.dtype == np.int16 else 1.0)
mix_chroma = librosa.feature.chroma_stft(y=mix, sr=mix_sr)
out = {
    "librosa": librosa.__version__,
    "signal": {"sr": SR, "seconds": SECONDS, "detune": DETUNE, "chords": CHORDS,
               "first": [float(v) for v in y[:4]], "sum_abs": float(np.abs(y.astype(np.float64)).sum())},
    "estimate_tuning_power_spectrogram": tuning_power,
    "estimate_tuning_y": tuning_y,
    "chroma_stft_mean": float(chroma.mean()),
    "chroma_stft_bin_means": [float(v) for v in chroma.mean(axis=1)],
    "chroma_stft_tuning0_mean": float(chroma0.mean()),
    "frames": int(chroma.shape[1]),
    "mix_22k_chroma_stft_mean": float(mix_chroma.mean()),
    "mix_22k_estimate_tuning": float(librosa.estimate_tuning(S=np.abs(librosa.stft(mix)) ** 2, sr=mix_sr)),
    "banks": banks,
}
with open("chroma-librosa-0.10.2.json", "w") as f:
    json.dump(out, f, separators=(",", ":"))
print(tuning_power, tuning_y, out["chroma_stft_mean"], out["chroma_stft_tuning0_mean"])
