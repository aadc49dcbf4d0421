"""TEST-MATERIAL GENERATION ONLY (not part of Hybrid; Hybrid never runs Python).

Writes trim-librosa-0.10.2.json: the [start, end) intervals librosa 0.10.2's librosa.effects.trim (ref=np.max,
aggregate=np.max) keeps for a set of signals and (top_db, frame_length, hop_length) combinations, which ClipTests.fs
compares with Clip.trimInterval. The signals are FSDD recordings of the shared reference folder (read as 16-bit PCM
scaled by 1/32768, as Hybrid reads them) and synthetic utterances whose formula ClipTests.fs repeats: `burst` (0.2 s of
silence, a 0.3 s decaying 440 Hz tone, 0.5 s of silence at 8 kHz), `noisy` (the same tone in low-level noise from a
fixed linear-congruential generator) and `silent` (zeros).

Run with Debian's python3 (numpy, scipy, numba) and librosa 0.10.2's source tree on the path, e.g. from a checkout of
github.com/librosa/librosa at tag 0.10.2:
    FSDD=/path/to/shared/data/fsdd /usr/bin/python3 make_trim_reference.py /path/to/librosa-0.10.2 [/path/to/shims]
where shims holds stand-ins for the optional packages librosa imports but trim does not use (lazy_loader,
typing_extensions: tests/Dsp.Kernels.Tests/reference/shims); audioread, soxr, pooch, msgpack and scikit-learn (imported by effects through decompose) are replaced by mocks.
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

RECORDINGS = ["0_jackson_0", "3_theo_12", "7_nicolas_31", "9_yweweler_44"]
SETTINGS = [(60, 2048, 512), (20, 256, 64), (30, 512, 128), (40, 256, 64), (10, 100, 37)]


def read_pcm16(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def synthetic():
    n = np.arange(8000)
    tone = np.where((n >= 1600) & (n < 4000), 0.5 * np.sin(2 * np.pi * 440 * n / 8000) * np.exp(-(n - 1600) / 2400.0), 0.0)
    lcg = np.zeros(8000)
    state = 12345
    for i in range(8000):
        state = (1103515245 * state + 12345) % 2147483648
        lcg[i] = state / 2147483648.0 - 0.5
    return {"burst": tone.astype(np.float32), "noisy": (tone + 1e-3 * lcg).astype(np.float32), "silent": np.zeros(8000, np.float32)}


def main():
    signals = {name: read_pcm16(os.path.join(os.environ["FSDD"], "recordings", name + ".wav")) for name in RECORDINGS}
    signals.update(synthetic())
    cases = []
    for name, y in signals.items():
        for top_db, frame_length, hop_length in SETTINGS:
            _, (start, end) = librosa.effects.trim(y, top_db=top_db, frame_length=frame_length, hop_length=hop_length)
            cases.append({"signal": name, "top_db": top_db, "frame_length": frame_length, "hop_length": hop_length,
                          "start": int(start), "end": int(end), "length": len(y)})
    with open("trim-librosa-0.10.2.json", "w") as f:
        json.dump({"librosa": librosa.__version__, "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main()
