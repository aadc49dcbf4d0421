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
/// `folder` for a mono clip, returning (path, caption) pairs. Clips shorter than one FFT are zero-padded.
let plotClip (engine: Engine) (folder: string) (name: string) (title: string) (sampleRate: int) (samples: float32[]) =
    Directory.CreateDirectory folder |> ignore
    let settings = settingsFor sampleRate
    let samples = if samples.Length < settings.Stft.NFft then Clip.fit settings.Stft.NFft Clip.Start samples else samples
    let n = samples.Length
    let compute kind =
        use clips = engine.FromHost(ReadOnlySpan samples, 1, n)
        use out = Transforms.computeOn engine settings kind clips
        Transforms.shape settings kind n, out.ToArray()
    let path suffix = Path.Combine(folder, sprintf "%s-%s.png" name suffix)
    let spectrumShape, power = compute Transforms.Stft
    use powerTensor = engine.FromHost(ReadOnlySpan power, 1, power.Length)
    use powerDb = engine.Allocate(1, power.Length)
    engine.Dsp.PowerToDb(settings.Db, powerTensor, powerDb)
    let melShape, melDb = compute Transforms.LogMel
    let mfccShape, mfcc = compute Transforms.Mfcc
    let frameAxis = sprintf "frame (hop %d samples)" settings.Stft.Hop
    [ Plots.waveform (path "waveform") (title + ": waveform") sampleRate samples, "waveform"
      Plots.heatmap (path "spectrogram") (title + ": power spectrogram (dB)") frameAxis "frequency bin" spectrumShape.[0] spectrumShape.[1] (powerDb.ToArray()), "spectrogram (dB)"
      Plots.heatmap (path "mel") (title + ": mel spectrogram (dB)") frameAxis "mel band" melShape.[0] melShape.[1] melDb, "mel spectrogram (dB)"
      Plots.heatmap (path "mfcc") (title + ": MFCC") frameAxis "coefficient" mfccShape.[0] mfccShape.[1] mfcc, "MFCC" ]
