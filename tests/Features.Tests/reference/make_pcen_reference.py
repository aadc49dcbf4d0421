"""TEST-MATERIAL GENERATION ONLY (not part of Hybrid; Hybrid never runs Python).

Writes pcen-librosa-0.10.2.json, which PcenTests.fs compares with Hybrid's PCEN:

- `kernel`: librosa.pcen alone on a small float32 spectrogram S (3 rows x 24 frames, stored exactly) at sr 8000,
  hop_length 128, for librosa's defaults and three other settings (time constant, gain, bias, power), including the
  power 0 (log1p) and bias 0 branches.
- `features`: the logmel-fsdd front end as the cnn2d recipe uses it (clips of 8,192 samples at 8 kHz, n_fft 512,
  hop_length 128, 40 Slaney mel bands, power 2, centred frames with zero padding: 40 x 65) with PCEN in place of
  power_to_db: librosa.pcen(librosa.feature.melspectrogram(y=clip, ...) * 2**31, sr=8000, hop_length=128) with
  librosa's defaults, as librosa's documentation scales the mel spectrogram of floating-point audio. The clips are FSDD
  recordings (read as 16-bit PCM scaled by 1/32768, as Hybrid reads them) zero-padded to 8,192 samples with
  (8192 - n) // 2 zeros in front (Clip.fit 8192 Clip.Center), and a synthetic `tone-noise` clip whose formula
  PcenTests.fs repeats: 8,000 samples at 8 kHz of low-level noise from a fixed linear-congruential generator
  (0.02 * (state / 2^31 - 0.5)) plus a 0.5-amplitude 440 Hz tone decaying from sample 1600 to 4000, padded alike.
  Values are rounded to 8 significant digits.

Run with Debian's python3 (numpy 1.24, scipy 1.10, numba) and librosa 0.10.2's source tree on the path, as
make_trim_reference.py:
    FSDD=/path/to/shared/data/fsdd /usr/bin/python3 make_pcen_reference.py /path/to/librosa-0.10.2 /path/to/shims
(shims: tests/Dsp.Kernels.Tests/reference/shims; audioread, soxr, pooch, msgpack and scikit-learn are mocked).
"""
import json
import os
import sys
import wave
from unittest import mock

sys.path[:0] = sys.argv[1:][::-1]
for name in ["audioread", "soxr", "pooch", "msgpack", "samplerate", "resampy", "sklearn", "sklearn.decomposition", "sklearn.cluster", "sklearn.feature_extraction", "sklearn.neighbors"]:
    sys.modules[name] = mock.MagicMock()

import numpy as np  # noqa: E402
import librosa  # noqa: E402

assert librosa.__version__ == "0.10.2", librosa.__version__

RECORDINGS = ["0_jackson_0", "7_nicolas_31"]
CLIP = 8192
SR, N_FFT, HOP, N_MELS = 8000, 512, 128, 40
SETTINGS = [
    {"time_constant": 0.4, "gain": 0.98, "bias": 2.0, "power": 0.5},
    {"time_constant": 0.06, "gain": 0.8, "bias": 10.0, "power": 0.25},
    {"time_constant": 0.2, "gain": 0.5, "bias": 2.0, "power": 0.0},
    {"time_constant": 1.0, "gain": 0.98, "bias": 0.0, "power": 0.5},
]


def g8(a):
    return [float(f"{v:.8g}") for v in np.asarray(a, dtype=np.float64).ravel()]


def read_pcm16(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def centred(y):
    out = np.zeros(CLIP, np.float32)
    front = (CLIP - len(y)) // 2
    out[front:front + len(y)] = y
    return out


def tone_noise():
    n = np.arange(8000)
    tone = np.where((n >= 1600) & (n < 4000), 0.5 * np.sin(2 * np.pi * 440 * n / 8000) * np.exp(-(n - 1600) / 2400.0), 0.0)
    lcg = np.zeros(8000)
    state = 12345
    for i in range(8000):
        state = (1103515245 * state + 12345) % 2147483648
        lcg[i] = state / 2147483648.0 - 0.5
    return (tone + 0.02 * lcg).astype(np.float32)


def kernel_input():
    t = np.arange(24)
    rows = [1e3 * (1 + np.sin(t / 3.0)) + 1e-3, 1e9 * np.exp(-t / 6.0), np.where(t % 5 == 0, 5e7, 2.0)]
    return np.array(rows, dtype=np.float32)


def main():
    s = kernel_input()
    kernel = {"sr": SR, "hop_length": HOP, "shape": list(s.shape), "input": [float(v) for v in s.ravel()], "cases": []}
    for setting in SETTINGS:
        out = librosa.pcen(s, sr=SR, hop_length=HOP, **setting)
        kernel["cases"].append(dict(setting, output=[float(v) for v in np.asarray(out, np.float64).ravel()]))
    signals = {name: read_pcm16(os.path.join(os.environ["FSDD"], "recordings", name + ".wav")) for name in RECORDINGS}
    signals["tone-noise"] = tone_noise()
    features = []
    for name, y in signals.items():
        mel = librosa.feature.melspectrogram(y=centred(y), sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
        out = librosa.pcen(mel * (2 ** 31), sr=SR, hop_length=HOP)
        features.append({"signal": name, "length": len(y), "shape": list(out.shape), "pcen": g8(out)})
    result = {"librosa": librosa.__version__, "numpy": np.__version__, "kernel": kernel,
              "features": {"sr": SR, "n_fft": N_FFT, "hop_length": HOP, "n_mels": N_MELS, "clip_samples": CLIP,
                           "scale": 2 ** 31, "clips": features}}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pcen-librosa-0.10.2.json")
    with open(path, "w") as f:
        json.dump(result, f, separators=(",", ":"))
        f.write("\n")
    print(path, os.path.getsize(path))


if __name__ == "__main__":
    main()
