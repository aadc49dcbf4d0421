module Hybrid.FeaturesTests.AudioPlotsTests

open System
open System.IO
open Expecto
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.Features

/// A harmonic sweep (fundamental 150 to 400 Hz, 12 harmonics at 1/k) at a sampling rate: speech-like content
/// below 5 kHz, whatever the rate.
let private sweep (sampleRate: int) (seconds: float) =
    let n = int (seconds * float sampleRate)
    Array.init n (fun i ->
        let t = float i / float sampleRate
        let phase = 2.0 * Math.PI * (150.0 * t + 125.0 * t * t / seconds)
        float32 (0.3 * Seq.sum (seq { for k in 1 .. 12 -> sin (float k * phase) / float k })))

/// The share of pixels in the middle of a spectral plot's data area (x 12-85%, y 15-85% of the picture, inside
/// the axes and left of the colour bar) brighter than viridis' darkest colours, i.e. drawn within about 50 dB of
/// the picture's maximum.
let private contentShare (path: string) =
    use bitmap = nonNull (SkiaSharp.SKBitmap.Decode path)
    let xs, ys = [ bitmap.Width * 12 / 100 .. bitmap.Width * 85 / 100 ], [ bitmap.Height * 15 / 100 .. bitmap.Height * 85 / 100 ]
    let bright =
        [ for x in xs do
            for y in ys do
                let c = bitmap.GetPixel(x, y)
                0.3 * float c.Red + 0.59 * float c.Green + 0.11 * float c.Blue > 80.0 ]
    float (bright |> List.filter id |> List.length) / float bright.Length

[<Tests>]
let tests =
    testList "AudioPlots" [
        test "settingsFor keeps the analysis window near librosa's 93 ms at any rate above 8 kHz" {
            let of' sr = let s = AudioPlots.settingsFor sr in s.Stft.NFft, s.Stft.Hop, s.Mel.NMels
            Expect.equal (of' 8000) (256, 128, 40) "8 kHz: the FSDD settings"
            Expect.equal (of' 22050) (2048, 512, 128) "22,050 Hz: librosa's defaults"
            Expect.equal (of' 16000) (2048, 512, 128) "16 kHz"
            Expect.equal (of' 44100) (4096, 1024, 128) "44.1 kHz"
            Expect.equal (of' 96000) (8192, 2048, 128) "96 kHz"
            Expect.throwsT<ArgumentException> (fun () -> AudioPlots.settingsFor 0 |> ignore) "a rate must be positive"
        }
        test "displayLimit stops a little above the highest loud bin, at a round frequency" {
            let sr, nFft, frames = 96000, 8192, 4
            let bins = nFft / 2 + 1
            // Content up to bin 300 (300 * 96000 / 8192 = 3516 Hz) within 60 dB; quieter noise above.
            let db = Array.init (bins * frames) (fun i -> if i / frames <= 300 then -10.0f else -75.0f)
            Expect.equal (AudioPlots.displayLimit sr nFft bins frames db) 4000.0 "3,516 Hz * 1.1 rounds up to 4 kHz"
            Expect.equal (AudioPlots.displayLimit sr nFft bins frames (Array.create (bins * frames) -80.0f)) 48000.0 "a silent clip shows up to sr / 2"
            let loud = Array.create (bins * frames) 0.0f
            Expect.equal (AudioPlots.displayLimit sr nFft bins frames loud) 48000.0 "flat content everywhere shows up to sr / 2"
            Expect.throwsT<ArgumentException> (fun () -> AudioPlots.displayLimit sr nFft bins frames [| 0.0f |] |> ignore) "size mismatch"
        }
        test "a 96 kHz clip's spectrograms show its content, not a strip at the bottom of 48 kHz" {
            let dir = Path.Combine(Path.GetTempPath(), "hybrid-audioplots-" + Guid.NewGuid().ToString("N"))
            try
                use engine = new ManagedEngine()
                let settings = AudioPlots.settingsFor 96000
                let plots = AudioPlots.plotClip engine dir "sweep" "sweep" settings (sweep 96000 1.5)
                Expect.equal (plots |> List.map snd) [ "waveform"; "spectrogram (dB)"; "mel spectrogram (dB)"; "MFCC"; "chroma" ] "every picture, in order"
                for path, _ in plots do
                    let w, h, colours = Plots.inspectPng path
                    Expect.equal (w, h) (Plots.defaultWidth, Plots.defaultHeight) (sprintf "%s: the default size" path)
                    Expect.isGreaterThan colours 8 (sprintf "%s: not blank" path)
                let share suffix = contentShare (Path.Combine(dir, sprintf "sweep-%s.png" suffix))
                Expect.isGreaterThan (share "spectrogram") 0.08 "the linear spectrogram's harmonics fill a visible part of the picture"
                // The same clip drawn up to sr / 2 (fmax 48 kHz given), as every clip was drawn before displayLimit.
                let full = { settings with Mel = MelConfig(SampleRate = 96000, NMels = settings.Mel.NMels, FMax = Nullable 48000.0) }
                AudioPlots.plotClip engine dir "full" "full" full (sweep 96000 1.5) |> ignore
                let whole = contentShare (Path.Combine(dir, "full-spectrogram.png"))
                Expect.isGreaterThan (share "spectrogram") (2.0 * whole) (sprintf "expected the default picture to show over twice the content of the 0-48 kHz one (%.3f), was %.3f" whole (share "spectrogram"))
                Expect.isGreaterThan (share "mel") 0.08 "the mel spectrogram's harmonics fill a visible part of the picture"
            finally
                if Directory.Exists dir then Directory.Delete(dir, true)
        }
    ]
