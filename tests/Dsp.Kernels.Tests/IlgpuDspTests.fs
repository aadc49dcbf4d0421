/// The ILGPU DSP operations on the CPU accelerator: librosa 0.10.2 parity on the reference arrays, STFT framing
/// against a double-precision reference, STFT/iSTFT reconstruction, delta exactness on polynomials, per-clip
/// top_db, pure-tone features, batch consistency and shape errors.
module Hybrid.DspKernelsTests.IlgpuDspTests

open System
open System.IO
open System.Text.Json
open Expecto
open Hybrid.Dsp
open Hybrid.TestSupport
open Hybrid.TestSupport.Assertions
open Hybrid.DspKernelsTests.IlgpuFixture

/// Reads a mono 16-bit PCM or 32-bit float WAV as float32 samples in [-1, 1).
let readWav (path: string) =
    let bytes = File.ReadAllBytes path
    let mutable pos = 12
    let mutable format = 0
    let mutable bits = 0
    let mutable data = [||]
    while pos + 8 <= bytes.Length do
        let id = Text.Encoding.ASCII.GetString(bytes, pos, 4)
        let size = BitConverter.ToInt32(bytes, pos + 4)
        if id = "fmt " then
            format <- int (BitConverter.ToInt16(bytes, pos + 8))
            bits <- int (BitConverter.ToInt16(bytes, pos + 22))
        elif id = "data" then
            data <-
                match format, bits with
                | 1, 16 -> Array.init (size / 2) (fun i -> float32 (BitConverter.ToInt16(bytes, pos + 8 + 2 * i)) / 32768.0f)
                | 3, 32 -> Array.init (size / 4) (fun i -> BitConverter.ToSingle(bytes, pos + 8 + 4 * i))
                | _ -> failtestf "%s: unsupported WAV format %d with %d bits" path format bits
        pos <- pos + 8 + size + (size &&& 1)
    data

/// One array of a reference JSON file: shape and row-major values.
let private refArray (doc: JsonDocument) (name: string) =
    let e = doc.RootElement.GetProperty name
    let data = [| for v in e.GetProperty("data").EnumerateArray() -> float32 (v.GetDouble()) |]
    data

let private run (e: Engine) (f: IDspOps -> unit) = f e.Dsp

/// Compares actual with expected within atol + rtol |expected|.
let private close what rtol atol (expected: float32[]) (actual: float32[]) = allClose rtol atol expected actual what

let private parity (folder: string) (name: string) =
    use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, name + ".json")))
    let cfg = doc.RootElement.GetProperty "config"
    let relative = doc.RootElement.GetProperty("wav").GetString() |> nonNull
    let wav =
        match Path.GetFullPath(Path.Combine(folder, relative)), TestData.fsddFolder () with
        | beside, _ when File.Exists beside -> beside
        | _, Some fsdd when relative.Contains "fsdd/recordings/" -> Path.Combine(fsdd, "recordings", Path.GetFileName relative |> nonNull)
        | beside, _ -> beside
    if not (File.Exists wav) then
        if TestData.requireData () then failtestf "signal %s not found" wav else skiptestf "signal %s not found" wav
    let y = readWav wav
    let sr = cfg.GetProperty("sr").GetInt32()
    let nFft = cfg.GetProperty("n_fft").GetInt32()
    let hop = cfg.GetProperty("hop_length").GetInt32()
    let nMels = cfg.GetProperty("n_mels").GetInt32()
    let fmax = cfg.GetProperty("fmax").GetDouble()
    let nMfcc = cfg.GetProperty("n_mfcc").GetInt32()
    let e = engine.Value
    let stft = StftConfig(nFft, hop)
    let frames = stft.FrameCount y.Length
    let bins = stft.Bins
    use clip = upload e y [| 1; y.Length |]
    use power = e.Allocate(1, bins, frames)
    use magnitude = e.Allocate(1, bins, frames)
    e.Dsp.Stft(stft, clip, power, SpectrumKind.Power)
    e.Dsp.Stft(stft, clip, magnitude, SpectrumKind.Magnitude)
    let expectedPower = refArray doc "power_spectrogram"
    let peak = float (Array.max expectedPower)
    close $"{name} power_spectrogram" 0.0 (1e-4 * peak) expectedPower (power.ToArray())
    use mel = e.Allocate(1, nMels, frames)
    e.Dsp.Mel(MelConfig(sr, nMels, 0.0, fmax), nFft, power, mel)
    let expectedMel = refArray doc "mel_spectrogram"
    close $"{name} mel_spectrogram" 0.0 (1e-4 * float (Array.max expectedMel)) expectedMel (mel.ToArray())
    use db = e.Allocate(1, nMels, frames)
    e.Dsp.PowerToDb(DbConfig(), mel, db)
    close $"{name} log_mel_db" 0.0 0.01 (refArray doc "log_mel_db") (db.ToArray())
    use mfcc = e.Allocate(1, nMfcc, frames)
    e.Dsp.Mfcc(nMfcc, 0.0f, db, mfcc)
    close $"{name} mfcc" 1e-5 2e-3 (refArray doc "mfcc") (mfcc.ToArray())
    let feature (f: Tensor -> unit) =
        use out = e.Allocate(1, frames)
        f out
        out.ToArray()
    let centroid = feature (fun o -> e.Dsp.SpectralCentroid(sr, nFft, magnitude, o))
    close $"{name} spectral_centroid" 1e-3 1e-3 (refArray doc "spectral_centroid") centroid
    let bandwidth = feature (fun o -> e.Dsp.SpectralBandwidth(sr, nFft, 2.0f, magnitude, o))
    close $"{name} spectral_bandwidth" 1e-3 1e-3 (refArray doc "spectral_bandwidth") bandwidth
    let rolloff = feature (fun o -> e.Dsp.SpectralRolloff(sr, nFft, 0.85f, magnitude, o))
    close $"{name} spectral_rolloff" 1e-3 1e-3 (refArray doc "spectral_rolloff") rolloff
    let zcr = feature (fun o -> e.Dsp.ZeroCrossingRate(nFft, hop, true, clip, o))
    close $"{name} zero_crossing_rate" 1e-3 1e-6 (refArray doc "zero_crossing_rate") zcr
    let rms = feature (fun o -> e.Dsp.Rms(nFft, hop, true, PadMode.Constant, clip, o))
    close $"{name} rms" 1e-3 1e-6 (refArray doc "rms") rms
    use chroma = e.Allocate(1, 12, frames)
    e.Dsp.Chroma(sr, nFft, 12, 0.0f, power, chroma)
    close $"{name} chroma_stft" 0.0 1e-4 (refArray doc "chroma_stft") (chroma.ToArray())

/// Double-precision STFT of one clip as librosa computes it: frames of the padded clip, times the window, DFT.
let private referenceStft (config: StftConfig) (clip: float32[]) =
    let n = config.NFft
    let window = Filters.Window(config.Window, config.Win, n)
    let pad = if config.Center then n / 2 else 0
    let len = clip.Length
    let sample p =
        let q = p - pad
        if q >= 0 && q < len then float clip.[q]
        else
            match config.PadMode with
            | PadMode.Constant -> 0.0
            | PadMode.Edge -> float clip.[if q < 0 then 0 else len - 1]
            | _ ->
                let period = 2 * (len - 1)
                let r = ((q % period) + period) % period
                float clip.[if r < len then r else period - r]
    let frames = config.FrameCount len
    let bins = config.Bins
    let out = Array.zeroCreate (bins * frames * 2)
    for t in 0 .. frames - 1 do
        let x = Array.init (2 * n) (fun i -> if i % 2 = 0 then float32 (sample (t * config.Hop + i / 2) * float window.[i / 2]) else 0.0f)
        let spectrum = naiveDft false n x
        for k in 0 .. bins - 1 do
            out.[(k * frames + t) * 2] <- spectrum.[2 * k]
            out.[(k * frames + t) * 2 + 1] <- spectrum.[2 * k + 1]
    out

let private stftOn (e: Engine) (config: StftConfig) (clips: float32[]) (batch: int) (kind: SpectrumKind) =
    let samples = clips.Length / batch
    let frames = config.FrameCount samples
    use x = upload e clips [| batch; samples |]
    use out = if kind = SpectrumKind.Complex then e.Allocate(batch, config.Bins, frames, 2) else e.Allocate(batch, config.Bins, frames)
    e.Dsp.Stft(config, x, out, kind)
    out.ToArray()

[<Tests>]
let tests =
    ilgpuList "IlgpuDsp" [
        for name in [ "tone440_8k"; "chirp_8k"; "noise_8k"; "0_jackson_0"; "mix_22k" ] do
            TestData.testWithReference $"every feature of {name} matches librosa 0.10.2 within the issue's tolerances" (fun folder -> parity folder name)

        for (n, hop, win, window, pad) in
            [ 32, 8, 32, WindowKind.Hann, PadMode.Constant
              33, 7, 20, WindowKind.Blackman, PadMode.Reflect
              31, 5, 31, WindowKind.Hamming, PadMode.Edge
              64, 16, 50, WindowKind.Rectangular, PadMode.Reflect ] do
            test $"a complex STFT (n_fft {n}, hop {hop}, win_length {win}, {window}, {pad} padding) matches a double-precision reference" {
                let config = StftConfig(n, hop, win, window, true, pad)
                let clip = randomSignal n 300
                let actual = stftOn engine.Value config clip 1 SpectrumKind.Complex
                let expected = referenceStft config clip
                allClose64 0.0 (2e-5 * maxAbs expected) expected (Array.map float actual) "complex STFT"
            }

        test "a non-centred power STFT of odd length 257 matches |reference|^2" {
            let config = StftConfig(257, 64, Center = false)
            let clip = randomSignal 5 1000
            let actual = stftOn engine.Value config clip 1 SpectrumKind.Power
            let c = referenceStft config clip
            let expected = Array.init (c.Length / 2) (fun i -> c.[2 * i] * c.[2 * i] + c.[2 * i + 1] * c.[2 * i + 1])
            allClose64 0.0 (1e-5 * maxAbs expected) expected (Array.map float actual) "power STFT"
        }

        test "a batch's STFT equals its clips' STFTs stacked" {
            let config = StftConfig(64, 16)
            let clips = randomSignal 9 (3 * 200)
            let together = stftOn engine.Value config clips 3 SpectrumKind.Power
            let apart = [| for b in 0 .. 2 -> stftOn engine.Value config (Array.sub clips (200 * b) 200) 1 SpectrumKind.Power |] |> Array.concat
            close "batched STFT" 0.0 1e-6 apart together
        }

        for (n, hop, window, center) in
            [ 256, 64, WindowKind.Hann, true
              256, 128, WindowKind.Hann, false
              400, 100, WindowKind.Hamming, true
              32, 32, WindowKind.Rectangular, true
              4096, 1024, WindowKind.Hann, true ] do
            test $"iSTFT(STFT x) reconstructs x for n_fft {n}, hop {hop}, {window}, center {center}" {
                let e = engine.Value
                let config = StftConfig(n, hop, Window = window, Center = center)
                // the global-memory path (n_fft > 2048) is slow on the CPU simulator: keep its case small
                let samples = if n > 2048 then n + 17 else 3 * n + 17
                let batch = if n > 2048 then 1 else 2
                let x = randomSignal (n + hop) (batch * samples)
                let frames = config.FrameCount samples
                use clips = upload e x [| batch; samples |]
                use spectrum = e.Allocate(batch, config.Bins, frames, 2)
                e.Dsp.Stft(config, clips, spectrum, SpectrumKind.Complex)
                use back = e.Allocate(batch, samples)
                e.Dsp.Istft(config, spectrum, back)
                let y = back.ToArray()
                // compare where full overlaps cover the signal: without centring the first and last n - hop samples are
                // windowed by fewer frames, and the tail past the last frame is not covered at all (librosa leaves zeros)
                let padLeft = if center then n / 2 else 0
                let covered = min samples ((frames - 1) * hop + n - padLeft)
                let first = if center then 0 else n
                let last = if center then covered else covered - n
                for b in 0 .. batch - 1 do
                    let inside (a: float32[]) = Array.sub a (b * samples + first) (last - first)
                    close $"reconstruction of clip {b}" 1e-5 1e-5 (inside x) (inside y)
            }

        test "order-1 deltas of a linear ramp are its slope and order-2 deltas of a parabola its second derivative, edges included" {
            let e = engine.Value
            let frames = 12
            let ramp = Array.init (2 * frames) (fun i -> float32 (3.0 * float (i % frames) - 4.0))
            let parabola = Array.init (2 * frames) (fun i -> let t = float (i % frames) in float32 (0.5 * t * t - t + 2.0))
            let delta width order (x: float32[]) =
                use input = upload e x [| 1; 2; frames |]
                use out = e.Allocate(1, 2, frames)
                e.Dsp.Delta(width, order, input, out)
                out.ToArray()
            for width in [ 3; 5; 9 ] do
                close $"ramp width {width}" 0.0 1e-4 (Array.create (2 * frames) 3.0f) (delta width 1 ramp)
                close $"parabola width {width}" 0.0 1e-4 (Array.create (2 * frames) 1.0f) (delta width 2 parabola)
        }

        test "power_to_db applies top_db per clip, never across the batch" {
            let e = engine.Value
            let loud = Array.init 50 (fun i -> float32 (1.0 + float i))
            let quiet = Array.init 50 (fun i -> float32 (1e-6 * (1.0 + float i)))
            use x = upload e (Array.append loud quiet) [| 2; 50 |]
            use y = e.Allocate(2, 50)
            e.Dsp.PowerToDb(DbConfig(TopDb = Nullable 10.0), x, y)
            let db = y.ToArray()
            let expected (clip: float32[]) =
                let peak = 10.0 * log10 (float (Array.max clip))
                clip |> Array.map (fun v -> float32 (max (10.0 * log10 (float v)) (peak - 10.0)))
            close "per-clip top_db" 0.0 1e-3 (Array.append (expected loud) (expected quiet)) db
            use a = e.Allocate(2, 50)
            e.Dsp.AmplitudeToDb(DbConfig(TopDb = Nullable 10.0), x, a)
            let expectedAmp (clip: float32[]) =
                let peak = 20.0 * log10 (float (Array.max clip))
                clip |> Array.map (fun v -> float32 (max (20.0 * log10 (float v)) (peak - 10.0)))
            close "per-clip amplitude_to_db" 0.0 1e-3 (Array.append (expectedAmp loud) (expectedAmp quiet)) (a.ToArray())
        }

        test "a pure 1 kHz tone at 16 kHz has its spectral centroid at 1 kHz and a zero-crossing rate of 2f/sr" {
            let e = engine.Value
            let sr, f, samples = 16000, 1000.0, 4096
            let tone = Array.init samples (fun i -> float32 (sin (2.0 * Math.PI * f * float i / float sr + 0.3)))
            let config = StftConfig(512, 128)
            let frames = config.FrameCount samples
            use clip = upload e tone [| 1; samples |]
            use mag = e.Allocate(1, config.Bins, frames)
            e.Dsp.Stft(config, clip, mag, SpectrumKind.Magnitude)
            use centroid = e.Allocate(1, frames)
            e.Dsp.SpectralCentroid(sr, 512, mag, centroid)
            let inner (a: float32[]) = a.[4 .. frames - 5]
            for c in inner (centroid.ToArray()) do Expect.floatClose { absolute = 5.0; relative = 0.0 } (float c) f "centroid (Hz)"
            let zcrFrames = 1 + samples / 128
            use zcr = e.Allocate(1, zcrFrames)
            e.Dsp.ZeroCrossingRate(512, 128, true, clip, zcr)
            for z in (zcr.ToArray()).[4 .. zcrFrames - 5] do Expect.floatClose { absolute = 2.0 / 512.0; relative = 0.0 } (float z) (2.0 * f / float sr) "zcr"
        }

        test "an output of the wrong shape is rejected naming the parameter and the expected shape" {
            let e = engine.Value
            use clip = e.Allocate(2, 1000)
            use wrong = e.Allocate(2, 129, 3)
            throwsArgument "STFT output" [ "output"; "[2, 129, 8]" ] (fun () -> e.Dsp.Stft(StftConfig(256, 128), clip, wrong))
        }
    ]
