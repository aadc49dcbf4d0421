/// The ILGPU DSP operations on every ILGPU engine of the machine, one list each (librosa parity is in LibrosaParityTests): STFT framing
/// against a double-precision reference, STFT/iSTFT reconstruction, delta exactness on polynomials, per-clip
/// top_db, pure-tone features, batch consistency and shape errors.
module Hybrid.DspKernelsTests.IlgpuDspTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.TestSupport
open Hybrid.TestSupport.Assertions
open Hybrid.DspKernelsTests.IlgpuFixture

/// Compares actual with expected within atol + rtol |expected|.
let private close what rtol atol (expected: float32[]) (actual: float32[]) = allClose rtol atol expected actual what

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

/// The DSP tests on one ILGPU engine.
let private onEngine (engine: Lazy<Engine>) =
    [
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
                allClose64 0.0 (2e-5 * maxAbs64 expected) expected (Array.map float actual) "complex STFT"
            }

        test "a non-centred power STFT of odd length 257 matches |reference|^2" {
            let config = StftConfig(257, 64, Center = false)
            let clip = randomSignal 5 1000
            let actual = stftOn engine.Value config clip 1 SpectrumKind.Power
            let c = referenceStft config clip
            let expected = Array.init (c.Length / 2) (fun i -> c.[2 * i] * c.[2 * i] + c.[2 * i + 1] * c.[2 * i + 1])
            allClose64 0.0 (1e-5 * maxAbs64 expected) expected (Array.map float actual) "power STFT"
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

[<Tests>]
let tests = ilgpuList "IlgpuDsp" [ for name, engine in ilgpuEngines -> testList name (onEngine engine) ]
