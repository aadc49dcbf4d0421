/// The example plots of a recording, drawn as librosa.display.specshow draws them (time in seconds, frequency
/// in Hz): waveform, power spectrogram (dB), mel spectrogram (dB), MFCC and chroma, computed on an engine with
/// settings suited to its sampling rate or given by the caller.
module Hybrid.Features.AudioPlots

open System
open System.IO
open Hybrid.Dsp
open Hybrid.Features.Schemas

/// Analysis settings for plots at a sampling rate: n_fft 256 / hop 128 / 40 mels at 8 kHz and below; above, the
/// power of two nearest to 2048 * sr / 22050 (librosa's 2048 at 22,050 Hz, i.e. a window of about 93 ms whatever
/// the rate: 2048 at 16 kHz, 4096 at 44.1 and 48 kHz, 8192 at 96 kHz), hop n_fft / 4 and 128 mels; 13 MFCC; mel
/// range 0 to sr / 2; top_db 80 (librosa's defaults otherwise).
let settingsFor (sampleRate: int) : Transforms.Settings =
    if sampleRate <= 0 then invalidArg (nameof sampleRate) (sprintf "sample rate must be positive, was %d" sampleRate)
    let small = sampleRate <= 8000
    let nFft = if small then 256 else 1 <<< int (Math.Round(Math.Log2(2048.0 * float sampleRate / 22050.0)))
    { Transforms.defaults sampleRate with
        Stft = StftConfig(NFft = nFft, HopLength = nFft / (if small then 2 else 4))
        Mel = MelConfig(SampleRate = sampleRate, NMels = (if small then 40 else 128))
        NMfcc = 13 }

/// dB values relative to their maximum (librosa's power_to_db with ref=np.max): the loudest cell is 0 dB.
let private relativeToMax (db: float32[]) =
    if db.Length = 0 then db
    else
        let peak = Array.max db
        db |> Array.map (fun v -> v - peak)

/// Levels below the loudest cell, in dB, that displayLimit counts as content.
let contentRangeDb = 60.0

/// The highest frequency a linear spectrogram shows by default: the highest FFT bin (of `bins` x `frames`
/// row-major dB values at `sampleRate` Hz with `nFft`) whose loudest frame is within contentRangeDb of the
/// loudest cell, plus 10%, rounded up to 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten Hz, and at most sr / 2. A silent
/// clip shows everything up to sr / 2. (A 96 kHz recording of speech thus shows its few kHz of content rather
/// than a thin strip at the bottom of 48 kHz.)
let displayLimit (sampleRate: int) (nFft: int) (bins: int) (frames: int) (db: float32[]) =
    let nyquist = float sampleRate / 2.0
    if db.Length <> bins * frames || db.Length = 0 then
        invalidArg (nameof db) (sprintf "expected %d x %d = %d values, was %d" bins frames (bins * frames) db.Length)
    let peak = float (Array.max db)
    let floor = float (Array.min db)
    if peak - floor < 1e-6 then nyquist
    else
        let loud (bin: int) = Seq.exists (fun t -> float db.[bin * frames + t] >= peak - contentRangeDb) (seq { 0 .. frames - 1 })
        let highest = Seq.tryFindBack loud (seq { 0 .. bins - 1 }) |> Option.defaultValue (bins - 1)
        let wanted = 1.1 * float (highest + 1) * float sampleRate / float nFft
        let decade = 10.0 ** Math.Floor(Math.Log10 wanted)
        let nice = [ 1.0; 1.5; 2.0; 2.5; 3.0; 4.0; 5.0; 6.0; 8.0; 10.0 ] |> List.map ((*) decade) |> List.find (fun v -> v >= wanted)
        min nice nyquist

/// Writes `{name}-waveform.png`, `{name}-spectrogram.png`, `{name}-mel.png`, `{name}-mfcc.png` and
/// `{name}-chroma.png` into `folder` for a mono clip at `settings.SampleRate` Hz, returning (path, caption) pairs.
/// The four spectral images are one run-time schema (power spectrogram, log-mel, MFCC, chroma) extracted through
/// Extraction with `settings` (n_fft, hop_length, window, n_mels, fmin, fmax, htk, n_mfcc, top_db, tuning), so they
/// show the features a model with those settings sees. Spectrograms are in dB relative to the clip's maximum
/// (ref=np.max, clipped top_db below it); the linear spectrogram shows up to fmax when settings give one, else up
/// to displayLimit. Clips shorter than one FFT are zero-padded. Raises ArgumentException naming a parameter that
/// does not fit the rate (e.g. fmax above sr / 2, n_mfcc above n_mels).
let plotClip (engine: Engine) (folder: string) (name: string) (title: string) (settings: Transforms.Settings) (samples: float32[]) =
    Directory.CreateDirectory folder |> ignore
    let sampleRate = settings.SampleRate
    let samples = if samples.Length < settings.Stft.NFft then Clip.fit settings.Stft.NFft Clip.Start samples else samples
    let n = samples.Length
    let member' (kind: FeatureKind) rows decibels =
        FeatureMember(
            Property = string kind, Kind = kind, Statistic = Statistic.TimeSeries, Column = (string kind).ToLowerInvariant(),
            Offset = 0, Width = 0, Rows = rows, Decibels = decibels)
    let schema =
        FeatureSchemaInfo.Create(
            "plots", Transforms.parameters settings n,
            [| member' FeatureKind.Spectrogram 0 false
               member' FeatureKind.MelBands 0 true
               member' FeatureKind.Mfcc settings.NMfcc false
               member' FeatureKind.Chroma 12 false |])
    let row = Extraction.rows engine schema [| samples |]
    let part (i: int) =
        let m = schema.Members.[i]
        m.Rows, m.Frames, row.[m.Offset .. m.Offset + m.Width - 1]
    let path suffix = Path.Combine(folder, sprintf "%s-%s.png" name suffix)
    let bins, frames, power = part 0
    use powerTensor = engine.FromHost(ReadOnlySpan power, 1, power.Length)
    use powerDb = engine.Allocate(1, power.Length)
    engine.Dsp.PowerToDb(DbConfig(TopDb = Option.toNullable settings.TopDb), powerTensor, powerDb)
    let spectrogramDb = relativeToMax (powerDb.ToArray())
    let mels, _, melDb = part 1
    let coefficients, _, mfcc = part 2
    let _, _, chroma = part 3
    let nFft, hop = settings.Stft.NFft, settings.Stft.Hop
    let limit =
        if settings.Mel.FMax.HasValue then settings.Mel.FMax.Value
        else displayLimit sampleRate nFft bins frames spectrogramDb
    let spectral suffix what axis colour rows data =
        Plots.spectral (path suffix) (sprintf "%s: %s" title what) sampleRate hop axis colour rows frames data
    [ Plots.waveform (path "waveform") (title + ": waveform") sampleRate samples, "waveform"
      spectral "spectrogram" (sprintf "power spectrogram (n_fft %d, hop %d)" nFft hop) (Plots.LinearHz(sampleRate, nFft, limit)) "dB" bins spectrogramDb,
      "spectrogram (dB)"
      spectral "mel" (sprintf "mel spectrogram (%d mels)" mels) (Plots.MelHz(settings.Mel.FMin, settings.Mel.FMaxOrNyquist, settings.Mel.Htk)) "dB" mels (relativeToMax melDb),
      "mel spectrogram (dB)"
      spectral "mfcc" "MFCC" (Plots.Index "MFCC coefficient") "" coefficients mfcc, "MFCC"
      spectral "chroma" "chromagram" Plots.PitchClasses "relative energy" 12 chroma, "chroma" ]
