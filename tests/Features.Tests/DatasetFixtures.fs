/// Temporary folders and hand-made WAV bytes (valid and broken) for the dataset, download and command tests.
module Hybrid.FeaturesTests.DatasetFixtures

open System
open System.IO
open System.Text

/// A temporary folder deleted on Dispose.
type TempFolder() =
    let path = Path.Combine(Path.GetTempPath(), "hybrid-tests-" + Guid.NewGuid().ToString("N"))
    do Directory.CreateDirectory path |> ignore
    member _.Path = path
    member _.Combine(relative: string) = Path.Combine(path, relative)
    interface IDisposable with
        member _.Dispose() =
            try Directory.Delete(path, true) with _ -> ()

let private ascii (s: string) = Encoding.ASCII.GetBytes s

let private le32 (v: int) = BitConverter.GetBytes v
let private le16 (v: int) = BitConverter.GetBytes(int16 v)

/// A canonical RIFF/WAVE file: fmt chunk (format tag, channels, rate, block align, bits) and data chunk.
let wavBytes (formatTag: int) (channels: int) (sampleRate: int) (bits: int) (data: byte[]) =
    let blockAlign = channels * bits / 8
    let fmt =
        Array.concat [ le16 formatTag; le16 channels; le32 sampleRate; le32 (sampleRate * blockAlign); le16 blockAlign; le16 bits ]
    let body =
        Array.concat [ ascii "WAVE"; ascii "fmt "; le32 fmt.Length; fmt; ascii "data"; le32 data.Length; data
                       (if data.Length % 2 = 1 then [| 0uy |] else [||]) ]
    Array.concat [ ascii "RIFF"; le32 body.Length; body ]

/// 32-bit float mono at 8 kHz holding the given samples.
let floatWav32 (samples: float32[]) = wavBytes 3 1 8000 32 (Array.collect (fun (v: float32) -> BitConverter.GetBytes v) samples)

/// 16-bit PCM mono: a 440 Hz tone of `frames` samples at `sampleRate`, amplitude 0.25.
let toneWav (sampleRate: int) (frames: int) =
    let data =
        Array.init frames (fun i -> int16 (8192.0 * sin (2.0 * Math.PI * 440.0 * float i / float sampleRate)))
        |> Array.collect BitConverter.GetBytes
    wavBytes 1 1 sampleRate 16 data

let write (path: string) (bytes: byte[]) =
    Directory.CreateDirectory(Path.GetDirectoryName path |> nonNull) |> ignore
    File.WriteAllBytes(path, bytes)

/// Writes an FSDD-style folder `root/recordings/{digit}_{speaker}_{index}.wav` (8 kHz tones whose length varies
/// with the index) for every digit, speaker and index given, plus speakers.csv.
let writeFsdd (root: string) (digits: int list) (speakers: string list) (indices: int list) =
    for d in digits do
        for s in speakers do
            for i in indices do
                write (Path.Combine(root, "recordings", sprintf "%d_%s_%d.wav" d s i)) (toneWav 8000 (800 + 10 * i))
    File.WriteAllLines(Path.Combine(root, "speakers.csv"), "speaker,gender" :: [ for s in speakers -> s + ",female" ])

/// Broken WAV files of many kinds, by name: each is bad in its own way.
let brokenWavs () : (string * byte[]) list =
    let good = toneWav 8000 400
    let patch (offset: int) (bytes: byte[]) =
        let copy = Array.copy good
        Array.blit bytes 0 copy offset bytes.Length
        copy
    [ "empty", [||]
      "text", ascii "this is not a wav file at all, just some text that is long enough"
      "header-only", good.[.. 11]
      "not-wave", patch 8 (ascii "AVI ")
      "mp3-format-tag", patch 20 (le16 0x55)
      "zero-channels", patch 22 (le16 0)
      "no-data-chunk", Array.concat [ ascii "RIFF"; le32 28; ascii "WAVE"; good.[12..35] ]
      "no-fmt-chunk", Array.concat [ ascii "RIFF"; le32 12; ascii "WAVE"; ascii "data"; le32 0 ]
      "pcm-33-bit", patch 34 (le16 33)
      "nan-float32", floatWav32 [| 0.1f; nanf; 0.2f |]
      "inf-float64", wavBytes 3 1 8000 64 (Array.collect (fun (v: float) -> BitConverter.GetBytes v) [| 0.5; Double.NegativeInfinity |]) ]

/// Recordings cut short (the data chunk declares more bytes than the file holds), by name: each is read with
/// the whole frames present and a warning, and refused by strict reading.
let truncatedWavs () : (string * byte[]) list =
    let good = toneWav 8000 400
    let patch (offset: int) (bytes: byte[]) =
        let copy = Array.copy good
        Array.blit bytes 0 copy offset bytes.Length
        copy
    [ "absurd-data-size", patch 40 (le32 0x7FFFFFF0)
      "truncated-data", good.[.. good.Length - 301] ]

/// A synthetic recording of class `label` (0 to 19): a voice-like harmonic source at a random pitch (90-260 Hz,
/// so pitch says nothing about the class) shaped by one resonance (150 Hz wide) that glides from a first to a
/// second centre frequency, the class being the pair (out of 400, 650, 1000, 1500 and 2300 Hz), with a random
/// onset, length, glide time and level, in white noise at a random SNR of 0-20 dB. `rng` draws the item's
/// randomness. `silentMiddle` keeps the middle third of the recording free of the class (noise and a 1 kHz tone
/// shared by every class), so only the outer thirds tell classes apart.
let synth (rng: Random) (sampleRate: int) (seconds: float) (label: int) (silentMiddle: bool) : float32[] =
    let n = max 1 (int (seconds * float sampleRate))
    let centres = [| 400.0; 650.0; 1000.0; 1500.0; 2300.0 |]
    let pairs = [| for a in 0 .. 4 do for b in 0 .. 4 do if a <> b then yield centres.[a], centres.[b] |]
    let first, second = pairs.[(label * 7) % pairs.Length]
    let f0 = 90.0 + 170.0 * rng.NextDouble()
    let onset = 0.15 * rng.NextDouble()
    let length = 0.6 + 0.25 * rng.NextDouble()
    let glide = 0.3 + 0.4 * rng.NextDouble()
    let level = 0.1 + 0.3 * rng.NextDouble()
    let snr = 20.0 * rng.NextDouble()
    let harmonics = [| for h in 1 .. int (3000.0 / f0) do if float h * f0 < float sampleRate / 2.0 then yield h |]
    let phases = harmonics |> Array.map (fun _ -> rng.NextDouble() * 2.0 * Math.PI)
    let voiced (u: float) (t: float) =
        let v = (u - onset) / length
        if v < 0.0 || v > 1.0 then 0.0
        else
            let centre = if v < glide then first + (second - first) * (v / glide) else second
            let mutable y = 0.0
            for k in 0 .. harmonics.Length - 1 do
                let f = float harmonics.[k] * f0
                let d = (f - centre) / 150.0
                if abs d < 4.0 then y <- y + exp (-d * d) * sin (2.0 * Math.PI * f * t + phases.[k])
            y * sin (Math.PI * v)
    let tone =
        Array.init n (fun i ->
            let t = float i / float sampleRate
            let u = float i / float n
            if silentMiddle then
                if u >= 1.0 / 3.0 && u < 2.0 / 3.0 then 0.5 * sin (2.0 * Math.PI * 1000.0 * t)
                else voiced ((u * 3.0) % 1.0) t
            else voiced u t)
    let power = (tone |> Array.sumBy (fun v -> v * v)) / float n
    let noiseScale = sqrt (max power 1e-6 / Math.Pow(10.0, snr / 10.0))
    let gaussian () =
        let u1 = 1.0 - rng.NextDouble()
        sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * rng.NextDouble())
    let raw = tone |> Array.map (fun v -> v + noiseScale * gaussian ())
    let peak = raw |> Array.fold (fun m v -> max m (abs v)) 1e-9
    raw |> Array.map (fun v -> float32 (level * v / peak))

/// Writes mono `samples` (duplicated into `channels` channels) as a WAV file in `format`.
let writeAudio (path: string) (format: Hybrid.Features.SampleFormat) (sampleRate: int) (channels: int) (samples: float32[]) =
    Directory.CreateDirectory(Path.GetDirectoryName path |> nonNull) |> ignore
    Hybrid.Features.Wav.write path format { SampleRate = sampleRate; Samples = Array.init channels (fun _ -> Array.copy samples) }

/// A Speech Commands v0.02 stand-in: `root/WORD/SPEAKER_nohash_N.wav` (16 kHz, 16-bit mono, 1 s, one in five
/// clips shorter, as in the real set), each word spoken by `speakers` speakers `takes` times, speaker k's pitch
/// shifted; the last speaker of every four is listed in testing_list.txt and the third in validation_list.txt
/// (Speech Commands assigns whole speakers by hash); `_background_noise_` holds two noise recordings (white at
/// 16 kHz, pink at 22,050 Hz) and the root a README.md, as the archive does. Returns the words.
let writeSpeechCommands (root: string) (words: string list) (speakers: int) (takes: int) (seed: int) =
    let rng = Random seed
    let validation = Collections.Generic.List<string>()
    let testing = Collections.Generic.List<string>()
    words |> List.iteri (fun w word ->
        for s in 0 .. speakers - 1 do
            let speaker = sprintf "%08x" (0x1a2b3c00 + s * 977)
            for take in 0 .. takes - 1 do
                let key = sprintf "%s/%s_nohash_%d.wav" word speaker take
                let seconds = if rng.Next 5 = 0 then 0.6 + 0.3 * rng.NextDouble() else 1.0
                let samples = synth rng 16000 seconds w false
                writeAudio (Path.Combine(root, key)) Hybrid.Features.SampleFormat.Pcm16 16000 1 samples
                if s % 4 = 3 then testing.Add key
                elif s % 4 = 2 then validation.Add key)
    File.WriteAllLines(Path.Combine(root, "validation_list.txt"), validation)
    File.WriteAllLines(Path.Combine(root, "testing_list.txt"), testing)
    let noise = Path.Combine(root, "_background_noise_")
    writeAudio (Path.Combine(noise, "white_noise.wav")) Hybrid.Features.SampleFormat.Pcm16 16000 1 (Array.init 48000 (fun _ -> float32 (0.2 * (rng.NextDouble() - 0.5))))
    let mutable pink = 0.0
    writeAudio (Path.Combine(noise, "pink_noise.wav")) Hybrid.Features.SampleFormat.Pcm16 22050 1
        (Array.init 44100 (fun _ -> pink <- 0.98 * pink + 0.02 * (rng.NextDouble() - 0.5); float32 (2.0 * pink)))
    File.WriteAllText(Path.Combine(noise, "README.md"), "background noise for augmentation")
    File.WriteAllText(Path.Combine(root, "README.md"), "Speech Commands stand-in")
    words

/// An UrbanSound8K stand-in: `root/metadata/UrbanSound8K.csv` (slice_file_name, fsID, start, end, salience, fold,
/// classID, class) and `root/audio/fold{K}/{fsID}-{classID}-0-{n}.wav` with `perFold` clips of each class in each of
/// `folds` folds, cycling through the real set's quirks: rates 11,025 / 22,050 / 44,100 / 48,000 Hz (and 96 kHz for
/// the shortest), 8-bit unsigned, 16- and 24-bit PCM and 32-bit float, mono and stereo, 0.5-4 s. Returns the classes.
let writeUrbanSound8K (root: string) (classes: string list) (folds: int) (perFold: int) (seed: int) =
    let rng = Random seed
    let rates = [| 44100; 22050; 48000; 11025 |]
    let formats = [| Hybrid.Features.SampleFormat.Pcm16; Hybrid.Features.SampleFormat.Pcm24; Hybrid.Features.SampleFormat.Float32; Hybrid.Features.SampleFormat.PcmU8 |]
    let rows = Collections.Generic.List<string>()
    rows.Add "slice_file_name,fsID,start,end,salience,fold,classID,class"
    let mutable n = 0
    for fold in 1 .. folds do
        for c, name in List.indexed classes do
            for _ in 1 .. perFold do
                n <- n + 1
                let seconds = if n % 5 = 0 then 0.5 else 1.0 + 3.0 * rng.NextDouble()
                let rate = if n % 11 = 0 then 96000 else rates.[n % rates.Length]
                let format = formats.[(n / 2) % formats.Length]
                let channels = if n % 3 = 0 then 2 else 1
                let fsId = 100000 + 37 * n
                let file = sprintf "%d-%d-0-%d.wav" fsId c (n % 7)
                writeAudio (Path.Combine(root, "audio", sprintf "fold%d" fold, file)) format rate channels (synth rng rate seconds c false)
                rows.Add(sprintf "%s,%d,0.0,%.3f,%d,%d,%d,%s" file fsId seconds (1 + n % 2) fold c name)
    Directory.CreateDirectory(Path.Combine(root, "metadata")) |> ignore
    File.WriteAllLines(Path.Combine(root, "metadata", "UrbanSound8K.csv"), rows)
    classes

/// A GTZAN stand-in: `root/genres/GENRE/GENRE.000NN.wav` (22,050 Hz, 16-bit mono) of `seconds` seconds, `perGenre`
/// tracks per genre, whose genres differ only outside the middle third of each track (synth's silentMiddle).
/// Returns the genres.
let writeGtzan (root: string) (genres: string list) (perGenre: int) (seconds: float) (seed: int) =
    let rng = Random seed
    genres |> List.iteri (fun g genre ->
        for k in 0 .. perGenre - 1 do
            writeAudio (Path.Combine(root, "genres", genre, sprintf "%s.%05d.wav" genre k)) Hybrid.Features.SampleFormat.Pcm16 22050 1 (synth rng 22050 seconds g true))
    genres

/// An ESC-50 stand-in: `root/meta/esc50.csv` (filename, fold, target, category, esc10, src_file, take) and
/// `root/audio/{fold}-{src}-{take}-{target}.wav` (44.1 kHz, 16-bit mono, 5 s as in the real set, or `seconds`),
/// `perFold` clips of each category in each of `folds` folds. Returns the categories.
let writeEsc50 (root: string) (categories: string list) (folds: int) (perFold: int) (seconds: float) (seed: int) =
    let rng = Random seed
    let rows = Collections.Generic.List<string>()
    rows.Add "filename,fold,target,category,esc10,src_file,take"
    for fold in 1 .. folds do
        for target, category in List.indexed categories do
            for k in 0 .. perFold - 1 do
                let src = 100000 + 1000 * fold + 10 * target + k
                let file = sprintf "%d-%d-A-%d.wav" fold src target
                writeAudio (Path.Combine(root, "audio", file)) Hybrid.Features.SampleFormat.Pcm16 44100 1 (synth rng 44100 seconds target false)
                rows.Add(sprintf "%s,%d,%d,%s,False,%d,A" file fold target category src)
    Directory.CreateDirectory(Path.Combine(root, "meta")) |> ignore
    File.WriteAllLines(Path.Combine(root, "meta", "esc50.csv"), rows)
    categories
