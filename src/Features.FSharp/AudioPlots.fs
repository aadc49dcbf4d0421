/// The example plots of a recording: waveform, power spectrogram (dB), mel spectrogram (dB) and MFCC,
/// computed on an engine with settings suited to its sampling rate.
module Hybrid.Features.AudioPlots

open System
open System.IO
open Hybrid.Dsp

/// Analysis settings for plots: n_fft 256 / hop 128 / 40 mels at 8 kHz and below, else n_fft 2048 / hop 512 /
/// 128 mels (librosa's defaults); 13 MFCC.
let settingsFor (sampleRate: int) : Transforms.Settings =
    let small = sampleRate <= 8000
    { Transforms.defaults sampleRate with
        Stft = StftConfig(NFft = (if small then 256 else 2048), HopLength = (if small then 128 else 512))
        Mel = MelConfig(SampleRate = sampleRate, NMels = (if small then 40 else 128))
        NMfcc = 13 }

/// Writes `{name}-waveform.png`, `{name}-spectrogram.png`, `{name}-mel.png` and `{name}-mfcc.png` into
/// `folder` for a mono clip, returning (path, caption) pairs. Clips shorter than one FFT are zero-padded. The three
/// images are one run-time schema (power spectrogram, log-mel, MFCC) extracted through Extraction, so they show the
/// features the models see.
let plotClip (engine: Engine) (folder: string) (name: string) (title: string) (sampleRate: int) (samples: float32[]) =
    Directory.CreateDirectory folder |> ignore
    let settings = settingsFor sampleRate
    let samples = if samples.Length < settings.Stft.NFft then Clip.fit settings.Stft.NFft Clip.Start samples else samples
    let n = samples.Length
    let member' (kind: Hybrid.Features.Schemas.FeatureKind) rows decibels =
        Hybrid.Features.Schemas.FeatureMember(
            Property = string kind, Kind = kind, Statistic = Hybrid.Features.Schemas.Statistic.TimeSeries, Column = (string kind).ToLowerInvariant(),
            Offset = 0, Width = 0, Rows = rows, Decibels = decibels)
    let schema =
        Hybrid.Features.Schemas.FeatureSchemaInfo.Create(
            "plots", Transforms.parameters settings n,
            [| member' Hybrid.Features.Schemas.FeatureKind.Spectrogram 0 false
               member' Hybrid.Features.Schemas.FeatureKind.MelBands 0 true
               member' Hybrid.Features.Schemas.FeatureKind.Mfcc settings.NMfcc false |])
    let row = Extraction.rows engine schema [| samples |]
    let part (i: int) =
        let m = schema.Members.[i]
        m.Rows, m.Frames, row.[m.Offset .. m.Offset + m.Width - 1]
    let path suffix = Path.Combine(folder, sprintf "%s-%s.png" name suffix)
    let bins, frames, power = part 0
    use powerTensor = engine.FromHost(ReadOnlySpan power, 1, power.Length)
    use powerDb = engine.Allocate(1, power.Length)
    engine.Dsp.PowerToDb(DbConfig(TopDb = Option.toNullable settings.TopDb), powerTensor, powerDb)
    let mels, _, melDb = part 1
    let coefficients, _, mfcc = part 2
    let frameAxis = sprintf "frame (hop %d samples)" settings.Stft.Hop
    [ Plots.waveform (path "waveform") (title + ": waveform") sampleRate samples, "waveform"
      Plots.heatmap (path "spectrogram") (title + ": power spectrogram (dB)") frameAxis "frequency bin" bins frames (powerDb.ToArray()), "spectrogram (dB)"
      Plots.heatmap (path "mel") (title + ": mel spectrogram (dB)") frameAxis "mel band" mels frames melDb, "mel spectrogram (dB)"
      Plots.heatmap (path "mfcc") (title + ": MFCC") frameAxis "coefficient" coefficients frames mfcc, "MFCC" ]
