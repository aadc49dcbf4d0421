#!/usr/bin/env python3
"""Corpus run: Hybrid's audio readers against soundfile (libsndfile) and ffmpeg on real-world and mutated files.

NOT PART OF THE TEST SUITE: a reference tool for the numbers in docs/audio-corpus.md. Needs Debian's
python3-soundfile, python3-numpy and ffmpeg, and `dotnet fsi build.fsx build` first.

  python3 run.py mutants FSDD_DIR OUT_DIR [--recordings 22] [--per-file 10] [--seed 26]
      converts FSDD recordings to every format Hybrid reads, then writes seeded mutants of each (header fields,
      sizes, truncation, byte flips, inserted garbage, tags in front; Ogg pages re-signed so the decoder sees them).
  python3 run.py compare OUT_DIR DIR_OR_FILE...
      reads every audio file under the arguments with Hybrid (read_all.fsx, 10 s watchdog per file) and with
      soundfile (a worker process, restarted after a crash or a 10 s hang; ffmpeg where soundfile refuses), compares
      rate, channels, length and samples, and writes OUT_DIR/report.jsonl and OUT_DIR/summary.json.
"""
import json, os, random, shutil, struct, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXTENSIONS = {'.wav', '.wave', '.rf64', '.au', '.snd', '.aif', '.aiff', '.aifc', '.flac', '.mp3', '.mp2', '.mpa', '.ogg', '.oga'}
LOSSY = {'MP3', 'MP2', 'MP1', 'Ogg Vorbis', 'Ogg Opus'}


# ---------------------------------------------------------------------------------------------------- mutants

def ffmpeg(src, dst, *codec):
    subprocess.run(['ffmpeg', '-v', 'error', '-y', '-i', str(src), *codec, str(dst)], check=True)


CONVERSIONS = [
    ('pcm16.wav', ['-c:a', 'pcm_s16le']), ('float.wav', ['-c:a', 'pcm_f32le']), ('rf64.wav', ['-c:a', 'pcm_s24le', '-rf64', 'always']),
    ('s16.au', ['-c:a', 'pcm_s16be']), ('mulaw.au', ['-c:a', 'pcm_mulaw']), ('f32.au', ['-c:a', 'pcm_f32be']),
    ('s16.aiff', ['-c:a', 'pcm_s16be']), ('f32.aifc', ['-c:a', 'pcm_f32be']), ('alaw.aifc', ['-c:a', 'pcm_alaw']),
    ('flac', ['-c:a', 'flac']), ('cbr.mp3', ['-c:a', 'libmp3lame', '-b:a', '32k']),
    ('vbr.mp3', ['-c:a', 'libmp3lame', '-q:a', '4', '-ar', '16000']), ('noxing.mp3', ['-c:a', 'libmp3lame', '-b:a', '24k', '-write_xing', '0', '-ar', '22050']), ('mp2', ['-c:a', 'mp2', '-ar', '16000', '-b:a', '64k']),
    ('ogg', ['-c:a', 'libvorbis', '-q:a', '3']),
]

OGG_CRC = []
for i in range(256):
    r = i << 24
    for _ in range(8):
        r = ((r << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if r & 0x80000000 else (r << 1) & 0xFFFFFFFF
    OGG_CRC.append(r)


def ogg_pages(b):
    at = 0
    while True:
        at = b.find(b'OggS', at)
        if at < 0 or at + 27 > len(b):
            return
        n = b[at + 26]
        size = 27 + n + sum(b[at + 27:at + 27 + n])
        yield at, size
        at += max(size, 1)


def ogg_resign(b):
    """Recomputes the CRC of every page, so that a mutated field reaches the decoder instead of a dropped page."""
    b = bytearray(b)
    for at, size in list(ogg_pages(b)):
        if at + size > len(b):
            continue
        b[at + 22:at + 26] = b'\0\0\0\0'
        crc = 0
        for x in b[at:at + size]:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ OGG_CRC[((crc >> 24) ^ x) & 0xFF]
        b[at + 22:at + 26] = struct.pack('<I', crc)
    return bytes(b)


ABSURD32 = [0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0x10000]


def mutate(name, data, rng):
    """One seeded mutation of a file; returns (label, bytes)."""
    b = bytearray(data)
    kind = rng.choice(['truncate', 'flip', 'flips', 'field', 'field', 'garbage', 'id3'])
    if kind == 'truncate':
        return 'truncate', bytes(b[:rng.randrange(1, len(b))])
    if kind == 'flip':
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
        return 'flip', bytes(b)
    if kind == 'flips':
        for _ in range(rng.randint(2, 16)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return 'flips', bytes(b)
    if kind == 'garbage':
        i = rng.randrange(len(b))
        return 'garbage', bytes(b[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 400))) + b[i:])
    if kind == 'id3':
        size = rng.randint(0, 300)
        tag = b'ID3\x04\x00\x00' + bytes([(size >> 21) & 127, (size >> 14) & 127, (size >> 7) & 127, size & 127]) + bytes(size)
        return 'id3', tag + bytes(b)
    # A header field: format-aware where it matters.
    if name.endswith('.flac'):
        field = rng.choice(['total', 'maxblock', 'rate', 'minblock'])
        if field == 'total':  # 36-bit total sample count at byte 21 (low 4 bits) .. 25
            v = rng.choice([0, 1, 2 ** 36 - 1, rng.randrange(2 ** 36)])
            b[21] = (b[21] & 0xF0) | (v >> 32)
            b[22:26] = struct.pack('>I', v & 0xFFFFFFFF)
        elif field == 'maxblock':
            b[10:12] = struct.pack('>H', rng.choice([16, 1, 0, 65535]))
        elif field == 'minblock':
            b[8:10] = struct.pack('>H', rng.choice([16, 1, 0, 65535]))
        else:  # 20-bit rate at byte 18
            v = rng.choice([0, 1, 0xFFFFF, 768001, 96000])
            b[18] = v >> 12
            b[19] = (v >> 4) & 0xFF
            b[20] = (b[20] & 0x0F) | ((v & 0xF) << 4)
        return 'field-' + field, bytes(b)
    if name.endswith('.ogg'):
        pages = list(ogg_pages(b))
        field = rng.choice(['granule-last', 'granule', 'channels', 'rate', 'comments', 'codebook'])
        if field.startswith('granule'):
            at, _ = pages[-1] if field == 'granule-last' else rng.choice(pages)
            b[at + 6:at + 14] = struct.pack('<q', rng.choice([0xFFFFFFFF, 0, -1, 2 ** 40, 1]))
        elif field in ('channels', 'rate'):
            at = b.find(b'\x01vorbis')
            if field == 'channels':
                b[at + 11] = rng.choice([0, 1, 3, 255])
            else:
                b[at + 12:at + 16] = struct.pack('<I', rng.choice(ABSURD32 + [768001]))
        elif field == 'comments':
            at = b.find(b'\x03vorbis') + 7
            b[at:at + 4] = struct.pack('<I', rng.choice(ABSURD32))
        else:
            at = b.find(b'BCV')
            if at > 0:
                b[at + 3:at + 5] = struct.pack('<H', rng.choice([0, 1, 65535]))
                b[at + 5:at + 8] = bytes([rng.randrange(256) for _ in range(3)])
        return 'field-' + field, ogg_resign(bytes(b))
    if name.endswith('.mp3') or name.endswith('.mp2'):
        x = max(b.find(b'Xing'), b.find(b'Info'))
        field = rng.choice(['xing-frames', 'xing-bytes', 'vbri', 'header', 'first-header'])
        if field.startswith('xing') and x > 0:
            off = x + 8 if field == 'xing-frames' else x + 12
            b[off:off + 4] = struct.pack('>I', rng.choice(ABSURD32))
        elif field == 'vbri':
            sync = next((i for i in range(len(b) - 4) if b[i] == 0xFF and b[i + 1] & 0xE0 == 0xE0), 0)
            vb = b'VBRI\x00\x01\x00\x00\x00\x00' + struct.pack('>II', 0x7FFFFFFF, rng.choice(ABSURD32)) + struct.pack('>HHHH', 65535, 1, 4, 1)
            b[sync + 36:sync + 36 + len(vb)] = vb
        else:
            starts = [i for i in range(len(b) - 4) if b[i] == 0xFF and b[i + 1] & 0xE0 == 0xE0][:200]
            i = starts[0] if field == 'first-header' or not starts else rng.choice(starts)
            b[i + rng.choice([1, 2, 3])] = rng.randrange(256)
        return 'field-' + field, bytes(b)
    # WAV, AU, AIFF: a 16- or 32-bit field in the first 64 bytes.
    i = rng.randrange(0, min(60, len(b) - 4))
    if rng.random() < 0.5:
        b[i:i + 4] = struct.pack('<I' if name.endswith('.wav') else '>I', rng.choice(ABSURD32 + [0x7FFFFFFF]))
    else:
        b[i:i + 2] = struct.pack('<H', rng.choice([0, 1, 0xFFFF, 3, 1024]))
    return 'field', bytes(b)


def make_mutants(fsdd, out, recordings, per_file, seed):
    rng = random.Random(seed)
    sources = sorted((Path(fsdd) / 'recordings').glob('*.wav'))
    sources = rng.sample(sources, recordings)
    base, mutants = Path(out) / 'base', Path(out) / 'mutants'
    for d in (base, mutants):
        d.mkdir(parents=True, exist_ok=True)
    count = 0
    for src in sources:
        for suffix, codec in CONVERSIONS:
            dst = base / f'{src.stem}.{suffix}'
            if not dst.exists():
                ffmpeg(src, dst, *codec)
            data = dst.read_bytes()
            for k in range(per_file):
                label, mutated = mutate(dst.name, data, rng)
                ext = dst.suffix
                (mutants / f'{dst.stem}.{k}.{label}{ext}').write_bytes(mutated)
                count += 1
    print(f'{len(sources)} recordings x {len(CONVERSIONS)} formats, {count} mutants in {mutants}')


# ---------------------------------------------------------------------------------------------------- reference

def ref_worker(refdir, listing, first):
    """Child process: soundfile decodes of the files listed in `listing` (one path a line) from line `first` on,
    one JSON line each on standard output."""
    import numpy as np, soundfile as sf
    paths = Path(listing).read_text().splitlines()
    for index in range(first, len(paths)):
        path = paths[index]
        index = str(index)
        try:
            data, rate = sf.read(path, dtype='float32', always_2d=True)
            np.save(os.path.join(refdir, index + '.npy'), np.ascontiguousarray(data.T))
            info = sf.info(path)
            print(json.dumps({'index': int(index), 'outcome': 'ok', 'rate': rate, 'channels': data.shape[1], 'frames': data.shape[0], 'format': info.format, 'subtype': info.subtype}), flush=True)
        except Exception as e:
            print(json.dumps({'index': int(index), 'outcome': 'error', 'message': str(e)[:300]}), flush=True)


def supervised(make_cmd, indices, timeout, on_line):
    """Runs a worker over indices, restarting it after a crash or a hang (recorded as such) at the next index."""
    pending = list(indices)
    while pending:
        proc = subprocess.Popen(make_cmd(pending[0]), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, bufsize=1)
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        while pending:
            if not sel.select(timeout):
                proc.kill()
                on_line({'index': pending[0], 'outcome': 'hang'})
                pending.pop(0)
                break
            line = proc.stdout.readline()
            if not line:
                proc.wait()
                if proc.returncode != 3:  # 3: the worker reported a hang itself and stopped
                    on_line({'index': pending[0], 'outcome': 'crash', 'code': proc.returncode})
                    pending.pop(0)
                break
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get('index', -1) < 0:
                on_line(record)
                continue
            on_line(record)
            while pending and pending[0] <= record['index']:
                pending.pop(0)
        if not pending:  # the worker's closing line (e.g. its peak working set)
            for line in proc.stdout:
                try:
                    on_line(json.loads(line))
                except ValueError:
                    pass
        proc.kill()
        proc.wait()


def ffmpeg_decode(path):
    try:
        probe = subprocess.run(['ffprobe', '-v', 'error', '-select_streams', 'a:0', '-show_entries', 'stream=sample_rate,channels', '-of', 'json', path],
                               capture_output=True, text=True, timeout=20)
        stream = json.loads(probe.stdout)['streams'][0]
        raw = subprocess.run(['ffmpeg', '-v', 'error', '-i', path, '-f', 'f32le', '-'], capture_output=True, timeout=30).stdout
        import numpy as np
        ch = int(stream['channels'])
        data = np.frombuffer(raw, dtype='<f4')
        data = np.ascontiguousarray(data[:len(data) // ch * ch].reshape(-1, ch).T)
        if data.shape[1] == 0:
            return {'outcome': 'error', 'message': 'ffmpeg decoded nothing'}, None
        return {'outcome': 'ok', 'rate': int(stream['sample_rate']), 'channels': ch, 'frames': data.shape[1]}, data
    except Exception as e:
        return {'outcome': 'error', 'message': str(e)[:200]}, None


# ---------------------------------------------------------------------------------------------------- compare

def same(ours, ours_samples, other, other_samples):
    """Whether two decodes agree: rate, channels, length, and samples within the codec's tolerance."""
    import numpy as np
    if other['outcome'] != 'ok' or (ours['rate'], ours['channels'], ours['frames']) != (other['rate'], other['channels'], other['frames']):
        return False
    if ours['frames'] == 0:
        return True
    diff = float(np.max(np.abs(ours_samples - other_samples)))
    ours['maxdiff'] = diff
    return diff <= (2e-3 if ours['container'] in LOSSY else 1e-4)


def classify(ours, ref, ours_samples, ref_samples, ffmpeg):
    """One verdict per file; ffmpeg() decodes the file with ffmpeg when a second opinion is needed."""
    if ours['outcome'] in ('hang', 'crash'):
        return ours['outcome']
    if ours['outcome'] == 'error' and ours.get('type') not in ('AudioFormatException',):
        return 'unhandled'
    if ours['outcome'] == 'error':
        return 'both-refuse' if ref['outcome'] != 'ok' else 'we-refuse'
    if ref['outcome'] == 'ok' and same(ours, ours_samples, ref, ref_samples):
        return 'agree'
    ff, ff_samples = ffmpeg()
    if same(ours, ours_samples, ff, ff_samples):
        return 'agree-ffmpeg' if ref['outcome'] == 'ok' else 'we-read-soundfile-refuses-agree-ffmpeg'
    if ref['outcome'] != 'ok':
        return 'we-read-soundfile-refuses'
    if (ours['rate'], ours['channels']) != (ref['rate'], ref['channels']):
        return 'differ-format'
    return 'differ-length' if ours['frames'] != ref['frames'] else 'differ-samples'


def compare(out, inputs):
    import numpy as np
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for arg in inputs:
        p = Path(arg)
        if p.is_dir():
            files += sorted(str(f) for f in p.rglob('*') if f.is_file() and f.suffix.lower() in EXTENSIONS)
        else:
            files.append(str(p))
    (out / 'files.txt').write_text('\n'.join(files) + '\n')
    ours_dir, ref_dir = out / 'ours', out / 'ref'
    for d in (ours_dir, ref_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    ours, refs = {}, {}
    started = time.time()
    script = HERE / 'read_all.fsx'

    def take_ours(r):
        if r.get('index', -1) >= 0:
            ours[r['index']] = r
        else:
            ours['done'] = r
    supervised(lambda first: ['dotnet', 'fsi', '--quiet', str(script), str(out / 'files.txt'), str(ours_dir), str(first)],
               range(len(files)), 60, take_ours)
    for i in range(len(files)):
        ours.setdefault(i, {'index': i, 'outcome': 'hang'})
    print(f'hybrid: {len(files)} files in {time.time() - started:.0f} s')
    started = time.time()
    supervised(lambda first: [sys.executable, __file__, 'ref-worker', str(ref_dir), str(out / 'files.txt'), str(first)], range(len(files)), 10,
               lambda r: refs.__setitem__(r['index'], r))
    print(f'soundfile: {len(files)} files in {time.time() - started:.0f} s')
    counts, report = {}, []
    for i, path in enumerate(files):
        o, r = ours[i], refs.get(i, {'outcome': 'missing'})
        o_samples = r_samples = None
        if o['outcome'] == 'ok':
            o_samples = np.fromfile(ours_dir / f'{i}.f32', dtype='<f4').reshape(o['channels'], -1) if o['frames'] > 0 else None
        if r['outcome'] == 'ok':
            r_samples = np.load(ref_dir / f'{i}.npy')
        ff = []

        def second_opinion():
            ff.append(ffmpeg_decode(path))
            return ff[0]
        verdict = classify(o, r, o_samples, r_samples, second_opinion)
        counts[verdict] = counts.get(verdict, 0) + 1
        entry = {'path': path, 'verdict': verdict, 'ours': o, 'soundfile': r}
        if ff:
            entry['ffmpeg'] = ff[0][0]
        if verdict == 'differ-length':
            entry['frames'] = (o['frames'], r['frames'])
        report.append(entry)
    with open(out / 'report.jsonl', 'w') as f:
        for e in report:
            f.write(json.dumps(e) + '\n')
    ok = [o for o in ours.values() if isinstance(o, dict) and o.get('outcome') in ('ok', 'error')]
    slowest = max((o.get('ms', 0) for o in ok), default=0)
    worst = max((o.get('allocated', 0) / (4.0 * max(1, o.get('frames', 0) * o.get('channels', 1)) * 4 + 300e6) for o in ok), default=0)
    summary = {'files': len(files), 'verdicts': counts, 'slowest_ms': slowest,
               'worst_allocated_over_budget': worst, 'peak_working_set': ours.get('done', {}).get('peakWorkingSet')}
    (out / 'summary.json').write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == '__main__':
    if sys.argv[1] == 'mutants':
        a = sys.argv[2:]
        opts = {k: int(v) for k, v in zip(a[2::2], a[3::2])}
        make_mutants(a[0], a[1], opts.get('--recordings', 22), opts.get('--per-file', 10), opts.get('--seed', 26))
    elif sys.argv[1] == 'ref-worker':
        ref_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == 'compare':
        compare(sys.argv[2], sys.argv[3:])
