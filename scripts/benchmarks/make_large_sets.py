#!/usr/bin/python3
"""Large synthetic data sets in real layouts for the memory and extraction figures of docs/benchmarks.md (Hybrid
itself needs no Python; the data is generated, never committed).

  speech-commands DIR [N]: N one-second 16 kHz 16-bit clips (default 20,000) in the Speech Commands layout:
      WORD/SPEAKER_nohash_K.wav for 10 words, validation_list.txt and testing_list.txt naming 10% of the speakers each.
      Each word is a formant glide on a voice-like source at a random pitch with noise at 0-20 dB SNR.
  gtzan DIR [N]: N 30 s tracks at 22,050 Hz, 16-bit (default 1,000) in GTZAN's layout genres/GENRE/GENRE.000KK.wav,
      10 genres, each a chord pattern of its own with a random tempo and noise.

Usage: /usr/bin/python3 scripts/benchmarks/make_large_sets.py (speech-commands | gtzan) DIR [N]
"""
import os
import sys

import numpy as np
import soundfile

WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


def glide(rng, word, sr=16000, seconds=1.0):
    n = int(sr * seconds)
    t = np.arange(n) / sr
    pitch = rng.uniform(90, 220)
    source = np.sign(np.sin(2 * np.pi * pitch * t)) * 0.3 + rng.normal(0, 0.05, n)
    start, end = 300 + 150 * word, 2500 - 120 * word
    formant = start + (end - start) * t / seconds
    signal = source * np.sin(2 * np.pi * np.cumsum(formant) / sr)
    envelope = np.clip(np.sin(np.pi * np.clip((t - 0.15) / 0.7, 0, 1)), 0, 1)
    signal = signal * envelope
    snr = rng.uniform(0, 20)
    noise = rng.normal(0, 1, n) * np.sqrt(np.mean(signal ** 2) / 10 ** (snr / 10))
    x = signal + noise
    return (x / (np.max(np.abs(x)) + 1e-9) * 0.8).astype(np.float32)


def speech_commands(root, count):
    rng = np.random.default_rng(1)
    speakers = max(10, count // (len(WORDS) * 5))
    validation, testing = [], []
    made = 0
    for k in range(count):
        w = k % len(WORDS)
        speaker = (k // len(WORDS)) % speakers
        take = k // (len(WORDS) * speakers)
        name = "%s/%08x_nohash_%d.wav" % (WORDS[w], 0x1000 + speaker, take)
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        soundfile.write(path, glide(rng, w), 16000, subtype="PCM_16")
        if speaker % 10 == 1:
            validation.append(name)
        elif speaker % 10 == 2:
            testing.append(name)
        made += 1
    with open(os.path.join(root, "validation_list.txt"), "w") as f:
        f.write("\n".join(validation) + "\n")
    with open(os.path.join(root, "testing_list.txt"), "w") as f:
        f.write("\n".join(testing) + "\n")
    print("%d clips, %d speakers, %d validation, %d test under %s" % (made, speakers, len(validation), len(testing), root))


def gtzan(root, count):
    rng = np.random.default_rng(2)
    sr, seconds = 22050, 30.0
    n = int(sr * seconds)
    t = np.arange(n) / sr
    for k in range(count):
        g = k % len(GENRES)
        index = k // len(GENRES)
        tempo = rng.uniform(1.5, 3.0) * (1 + 0.1 * g)
        base = 110 * 2 ** (g / 12)
        chord = sum(np.sin(2 * np.pi * base * r * t) for r in (1, 1.25 + 0.01 * g, 1.5))
        beat = (np.sin(2 * np.pi * tempo * t) > 0).astype(np.float64)
        x = chord * (0.3 + 0.7 * beat) + rng.normal(0, 0.3, n)
        x = (x / np.max(np.abs(x)) * 0.8).astype(np.float32)
        path = os.path.join(root, "genres", GENRES[g], "%s.%05d.wav" % (GENRES[g], index))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        soundfile.write(path, x, sr, subtype="PCM_16")
    print("%d tracks of %g s at %d Hz under %s" % (count, seconds, sr, root))


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("speech-commands", "gtzan"):
        sys.exit(__doc__)
    kind, root = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else (20000 if kind == "speech-commands" else 1000)
    (speech_commands if kind == "speech-commands" else gtzan)(root, count)
