#!/bin/sh
# TEST-MATERIAL GENERATION ONLY (not part of Hybrid). Made once with Debian's ffmpeg and python3-soundfile
# (libsndfile 1.2.0); the files are committed, so tests never run this.
# Encodes a short two-tone signal into every container AudioFile reads, then decodes each file with soundfile
# (libsndfile: its own readers, libFLAC, mpg123, libvorbis) into <file>.ref.wav (float32 WAV), the reference
# the tests compare AudioFile's samples with.
set -e
cd "$(dirname "$0")"
/usr/bin/python3 - <<'PY'
import numpy as np, soundfile as sf
def tone(sr, seconds, channels):
    t = np.arange(int(sr * seconds)) / sr
    env = np.minimum(1.0, np.minimum(t, t[::-1]) * 40)
    left = env * (0.5 * np.sin(2 * np.pi * 440 * t) + 0.25 * np.sin(2 * np.pi * 1234.5 * t))
    right = env * 0.4 * np.sin(2 * np.pi * 660 * t)
    return np.stack([left, right][:channels], axis=1).astype(np.float32)
sf.write("source-8k-mono.wav", tone(8000, 0.12, 1), 8000, subtype="FLOAT")
sf.write("source-8k-stereo.wav", tone(8000, 0.12, 2), 8000, subtype="FLOAT")
sf.write("source-22k-mono.wav", tone(22050, 0.3, 1), 22050, subtype="FLOAT")
sf.write("source-16k-stereo.wav", tone(16000, 0.3, 2), 16000, subtype="FLOAT")
PY
m=source-8k-mono.wav; s=source-8k-stereo.wav
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_s16be s16.au
ffmpeg -hide_banner -loglevel error -y -i $s -c:a pcm_s16be stereo-s16.au
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_s8 s8.au
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_s24be s24.au
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_s32be s32.au
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_f32be f32.au
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_f64be f64.au
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_mulaw mulaw.au
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_alaw alaw.au
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_s16be s16.aiff
ffmpeg -hide_banner -loglevel error -y -i $s -c:a pcm_s24be stereo-s24.aiff
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_s8 s8.aiff
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_f32be f32.aifc
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_mulaw mulaw.aifc
ffmpeg -hide_banner -loglevel error -y -i $m -c:a pcm_alaw alaw.aifc
ffmpeg -hide_banner -loglevel error -y -i $s -c:a flac stereo.flac
ffmpeg -hide_banner -loglevel error -y -i source-22k-mono.wav -c:a libmp3lame -b:a 64k mono-22k.mp3
ffmpeg -hide_banner -loglevel error -y -i source-22k-mono.wav -c:a mp2 -b:a 64k mono-22k.mp2
ffmpeg -hide_banner -loglevel error -y -i source-16k-stereo.wav -c:a libvorbis -q:a 4 stereo-16k.ogg
/usr/bin/python3 - <<'PY'
import glob, soundfile as sf
for name in sorted(glob.glob("*.au") + glob.glob("*.aif*") + glob.glob("*.flac") + glob.glob("*.mp3") + glob.glob("*.mp2") + glob.glob("*.ogg")):
    data, sr = sf.read(name, dtype="float32", always_2d=True)
    sf.write(name + ".ref.wav", data, sr, subtype="FLOAT")
    print(name, sr, data.shape)
PY
rm -f source-22k-mono.wav source-16k-stereo.wav
