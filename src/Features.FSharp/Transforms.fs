/// Configured feature transforms (torchaudio's `transforms`, librosa's `feature` functions) over batches of
/// fixed-length clips: each transform is a one-member feature schema laid out at run time
/// (FeatureSchemaInfo.Create) and extracted through the one extraction path (Extraction), so its rows, column
/// names and fingerprint follow the same rules as every schema's.
module Hybrid.Features.Transforms

open System
open Hybrid.Dsp
open Hybrid.Features.Schemas

/// What a transform computes per clip.
type Kind =
    /// |STFT|^power: [n_fft/2+1, frames].
    | Stft
    /// Mel spectrogram of the power spectrogram: [n_mels, frames].
    | Mel
    /// The mel spectrogram in dB with librosa's rule for the power (power_to_db at 2, amplitude_to_db at 1): [n_mels, frames].
    | LogMel
    /// MFCC (DCT-II ortho of power_to_db of the mel spectrogram at the power, optional lifter; librosa.feature.mfcc): [n_mfcc, frames].
    | Mfcc
    /// Spectral centroid of the magnitude spectrogram: [1, frames].
    | Centroid
    /// Spectral bandwidth (p = 2): [1, frames].
    | Bandwidth
    /// Spectral roll-off (85%): [1, frames].
    | Rolloff
    /// Spectral flatness: [1, frames].
    | Flatness
    /// Zero-crossing rate (frame length n_fft): [1, frames].
    | Zcr
    /// RMS energy (frame length n_fft): [1, frames].
    | Rms
    /// Chroma from the power spectrogram (12 bins; tuning estimated per clip unless Settings.Tuning gives it): [12, frames].
    | Chroma
    /// kymatio's Scattering1D (J, Q, T, max_order of Settings.Scattering): [paths, frames]; with Settings.LogMean the
    /// time-averaged log-scattering log(|S| + 1e-6) of every path but order 0: [paths - 1].
    | Scattering

/// The CLI names of the kinds, in order.
let kindNames =
    [ "stft", Stft; "mel", Mel; "logmel", LogMel; "mfcc", Mfcc; "centroid", Centroid; "bandwidth", Bandwidth
      "rolloff", Rolloff; "flatness", Flatness; "zcr", Zcr; "rms", Rms; "chroma", Chroma; "scattering", Scattering ]

/// Parses a CLI transform name (e.g. "logmel").
let parseKind (name: string) =
    match kindNames |> List.tryFind (fun (n, _) -> n = name.ToLowerInvariant()) with
    | Some (_, k) -> k
    | None -> invalidArg (nameof name) (sprintf "unknown transform '%s'; expected one of %s" name (kindNames |> List.map fst |> String.concat ", "))

/// The name of a kind.
let kindName (kind: Kind) = kindNames |> List.find (fun (_, k) -> k = kind) |> fst

/// Every parameter of a transform, with librosa's names and 0.10 defaults.
type Settings =
    { SampleRate: int
      Stft: StftConfig
      /// Exponent of the magnitude spectrogram (librosa's power): 2 (power, the default), 1 (magnitude) or any
      /// positive value.
      Power: float
      Mel: MelConfig
      /// Dynamic range in dB kept below each clip's maximum by the dB conversions; None keeps everything.
      TopDb: float option
      NMfcc: int
      Lifter: float 
      /// Scattering: J, Q, T and max_order (kymatio's names).
      Scattering: ScatteringConfig
      /// Scattering: write the time-averaged log-scattering without order 0 instead of every frame.
      LogMean: bool
      /// Chroma tuning in fractions of a bin; None estimates it per clip from its power spectrogram
      /// (librosa.feature.chroma_stft's default tuning=None, through Tuning.ChromaStft).
      Tuning: float option }

/// librosa 0.10's defaults at the given sampling rate.
let defaults (sampleRate: int) =
    { SampleRate = sampleRate
      Stft = StftConfig()
      Power = 2.0
      Mel = MelConfig(SampleRate = sampleRate)
      TopDb = Some 80.0
      NMfcc = 20
      Lifter = 0.0
      Scattering = ScatteringConfig(8, 1)
      LogMean = false
      Tuning = None }

/// epsilon of the log-scattering mean (kymatio's spoken-digit example).
let logEpsilon = 1e-6

/// The settings as a schema's resolved parameters for clips of `clipSamples` samples. Raises ArgumentException
/// naming "sr" when the mel filter bank's rate differs from the transform's.
let parameters (settings: Settings) (clipSamples: int) : FeatureParameters =
    if settings.Mel.SampleRate <> settings.SampleRate then
        invalidArg "sr" (sprintf "mel filter sample rate %d differs from sr %d" settings.Mel.SampleRate settings.SampleRate)
    FeatureParameters(
        SampleRate = settings.SampleRate, ClipSamples = clipSamples, NFft = settings.Stft.NFft, HopLength = settings.Stft.Hop,
        WinLength = settings.Stft.Win, Window = settings.Stft.Window, Center = settings.Stft.Center, PadMode = settings.Stft.PadMode,
        NMels = settings.Mel.NMels, FMin = settings.Mel.FMin, FMax = settings.Mel.FMaxOrNyquist, Htk = settings.Mel.Htk,
        Norm = settings.Mel.Norm, Power = settings.Power, TopDb = Option.toNullable settings.TopDb, NMfcc = settings.NMfcc,
        Lifter = settings.Lifter, Tuning = defaultArg settings.Tuning 0.0, EstimateTuning = settings.Tuning.IsNone, RollPercent = 0.85)

/// The plan of one transform: a time-series member named after the kind.
let private memberOf (settings: Settings) (kind: Kind) =
    let name = kindName kind
    let m (k: FeatureKind) =
        FeatureMember(Property = name, Kind = k, Statistic = Statistic.TimeSeries, Column = name, Offset = 0, Width = 0, Rows = 1)
    match kind with
    | Stft -> m FeatureKind.Spectrogram
    | Mel -> m FeatureKind.MelBands
    | LogMel -> FeatureMember(Property = name, Kind = FeatureKind.MelBands, Statistic = Statistic.TimeSeries, Column = name, Offset = 0, Width = 0, Rows = 1, Decibels = true)
    | Mfcc -> FeatureMember(Property = name, Kind = FeatureKind.Mfcc, Statistic = Statistic.TimeSeries, Column = name, Offset = 0, Width = 0, Rows = settings.NMfcc)
    | Centroid -> m FeatureKind.SpectralCentroid
    | Bandwidth -> m FeatureKind.SpectralBandwidth
    | Rolloff -> m FeatureKind.SpectralRolloff
    | Flatness -> m FeatureKind.SpectralFlatness
    | Zcr -> m FeatureKind.ZeroCrossingRate
    | Rms -> m FeatureKind.Rms
    | Chroma -> FeatureMember(Property = name, Kind = FeatureKind.Chroma, Statistic = Statistic.TimeSeries, Column = name, Offset = 0, Width = 0, Rows = 12, Pooled = false)
    | Scattering -> invalidArg (nameof kind) "the scattering transform has no schema member; Transforms.extractor runs it"

/// The transform as a one-member schema for clips of `clipSamples` samples (FeatureSchemaInfo.Create): shape
/// [rows, frames] ([frames] for one-row kinds), columns `{kind}{row}_{frame}` (`{kind}{frame}` for one row, 1-based),
/// and the schema fingerprint over every parameter, the clip length and the kind. ZCR and RMS frame with n_fft and
/// hop_length. Raises ArgumentException naming the librosa parameter (e.g. fmax above Nyquist, n_mfcc above n_mels).
let schema (settings: Settings) (kind: Kind) (clipSamples: int) : FeatureSchemaInfo =
    if kind = Scattering then invalidArg (nameof kind) "the scattering transform is not laid out as a schema; use shape, names and extractor"
    FeatureSchemaInfo.Create(kindName kind, parameters settings clipSamples, [| memberOf settings kind |])

/// The shape of one clip's features (see `schema`); for scattering [paths, frames], or [paths - 1] for the
/// log-scattering mean. Raises ArgumentException for scattering parameters out of range for the clip length.
let shape (settings: Settings) (kind: Kind) (clipSamples: int) =
    match kind with
    | Scattering ->
        let bank = Filters.Scattering1D(settings.Scattering, clipSamples)
        if settings.LogMean then [| bank.Paths.Count - 1 |] else [| bank.Paths.Count; bank.Frames |]
    | _ -> Array.ofSeq (schema settings kind clipSamples).Shape

/// Column names of one clip's features in row order (see `schema`; scattering: `scattering{path}_{frame}`, 1-based,
/// or `scattering{path}` for the log mean).
let names (settings: Settings) (kind: Kind) (clipSamples: int) =
    match kind with
    | Scattering ->
        match shape settings kind clipSamples with
        | [| paths |] -> [| for p in 1 .. paths -> sprintf "scattering%d" p |]
        | s -> [| for p in 1 .. s.[0] do for f in 1 .. s.[1] -> sprintf "scattering%d_%d" p f |]
    | _ -> Array.ofSeq (schema settings kind clipSamples).Names

/// The fingerprint of the transform's schema: changes with any parameter, the kind and the clip length.
let fingerprint (settings: Settings) (kind: Kind) (clipSamples: int) =
    match kind with
    | Scattering ->
        let c = settings.Scattering
        let text = sprintf "transform=scattering;clip=%d;sr=%d;J=%d;Q=%d;T=%A;max_order=%d;log_mean=%b" clipSamples settings.SampleRate c.J c.Q c.T c.MaxOrder settings.LogMean
        Convert.ToHexString(Security.Cryptography.SHA256.HashData(Text.Encoding.UTF8.GetBytes text)).ToLowerInvariant()
    | _ -> (schema settings kind clipSamples).Fingerprint

/// Scattering1D of a batch on the engine: [batch, paths, frames], or [batch, paths - 1] log-scattering means.
let private scatteringOn (engine: Engine) (settings: Settings) (clips: Tensor) =
    let batch, samples = clips.Shape.[0], clips.Shape.[1]
    let bank = Filters.Scattering1D(settings.Scattering, samples)
    let paths, frames = bank.Paths.Count, bank.Frames
    let s = engine.Allocate(batch, paths, frames)
    engine.Dsp.Scattering1D(settings.Scattering, clips, s)
    if not settings.LogMean then s
    else
        let values = s.ToArray()
        s.Dispose()
        let means =
            Array.init (batch * (paths - 1)) (fun i ->
                let b, p = i / (paths - 1), i % (paths - 1) + 1
                let mutable acc = 0.0
                for f in 0 .. frames - 1 do
                    acc <- acc + log (abs (float values.[(b * paths + p) * frames + f]) + logEpsilon)
                float32 (acc / float frames))
        engine.FromHost(ReadOnlySpan means, batch, paths - 1)

/// The transform as a batched extractor on an engine for clips of `clipSamples` samples (Extraction.extractor of
/// its schema).
/// Scattering is computed directly (it is not a schema member of a transform).
let extractor (engine: Engine) (settings: Settings) (kind: Kind) (clipSamples: int) : Pipeline.Extractor =
    let direct (compute: Tensor -> Tensor) : Pipeline.Extractor =
        let s = shape settings kind clipSamples
        { Name = kindName kind
          Fingerprint = fingerprint settings kind clipSamples
          Length = Array.fold (*) 1 s
          Shape = s
          SampleRate = settings.SampleRate
          ClipSamples = clipSamples
          ExtractBatch =
            fun clips n ->
                use input = engine.FromHost(ReadOnlySpan clips, n, clipSamples)
                use output = compute input
                output.ToArray() }
    match kind with
    | Scattering -> direct (scatteringOn engine settings)
    | _ -> Extraction.extractor engine (schema settings kind clipSamples)
