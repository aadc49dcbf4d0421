/// Configured feature transforms (torchaudio's `transforms`, librosa's `feature` functions) over batches of
/// fixed-length clips on any engine: each is a Pipeline.Extractor whose row is a [rows, frames] matrix.
module Hybrid.Features.Transforms

open System
open System.Security.Cryptography
open System.Text
open Hybrid.Dsp

/// What a transform computes per clip.
type Kind =
    /// |STFT|^power: [n_fft/2+1, frames].
    | Stft
    /// Mel spectrogram of the power spectrogram: [n_mels, frames].
    | Mel
    /// power_to_db of the mel spectrogram (amplitude_to_db when power is 1): [n_mels, frames].
    | LogMel
    /// MFCC (DCT-II ortho of the log-mel spectrogram, optional lifter): [n_mfcc, frames].
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
      /// Exponent of the magnitude for Stft/Mel/LogMel: 1 (magnitude) or 2 (power).
      Power: float
      Mel: MelConfig
      Db: DbConfig
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
      Db = DbConfig()
      NMfcc = 20
      Lifter = 0.0
      Scattering = ScatteringConfig(8, 1)
      LogMean = false
      Tuning = None }

/// epsilon of the log-scattering mean (kymatio's spoken-digit example).
let logEpsilon = 1e-6

/// Rows of one clip's matrix.
let rows (settings: Settings) (kind: Kind) =
    match kind with
    | Stft -> settings.Stft.Bins
    | Mel | LogMel -> settings.Mel.NMels
    | Mfcc -> settings.NMfcc
    | Chroma -> 12
    | Centroid | Bandwidth | Rolloff | Flatness | Zcr | Rms -> 1
    | Scattering -> invalidArg (nameof kind) "the scattering transform's rows depend on the clip length; use shape"

/// The [rows, frames] shape of one clip of `clipSamples` samples ([paths - 1] for the log-scattering mean).
/// Raises ArgumentException for scattering parameters out of range for the clip length.
let shape (settings: Settings) (kind: Kind) (clipSamples: int) =
    match kind with
    | Scattering ->
        let bank = Filters.Scattering1D(settings.Scattering, clipSamples)
        if settings.LogMean then [| bank.Paths.Count - 1 |] else [| bank.Paths.Count; bank.Frames |]
    | _ -> [| rows settings kind; settings.Stft.FrameCount clipSamples |]

/// Column names of the flattened matrix: `{kind}{row}_t{frame}` (or `{kind}_t{frame}` for one row).
let names (settings: Settings) (kind: Kind) (clipSamples: int) =
    let s = shape settings kind clipSamples
    let prefix = kindName kind
    if s.Length = 1 then [| for r in 1 .. s.[0] -> sprintf "%s%d" prefix r |] else
    [| for r in 0 .. s.[0] - 1 do
         for t in 0 .. s.[1] - 1 do
             if s.[0] = 1 then sprintf "%s_t%d" prefix t else sprintf "%s%d_t%d" prefix r t |]

let private validate (settings: Settings) (kind: Kind) =
    settings.Stft.Validate()
    if settings.SampleRate <= 0 then invalidArg "sr" (sprintf "sr must be positive, was %d" settings.SampleRate)
    if settings.Power <> 1.0 && settings.Power <> 2.0 then invalidArg "power" (sprintf "power must be 1 or 2, was %g" settings.Power)
    if settings.Mel.SampleRate <> settings.SampleRate then
        invalidArg "sr" (sprintf "mel filter sample rate %d differs from sr %d" settings.Mel.SampleRate settings.SampleRate)
    if settings.Mel.FMaxOrNyquist > float settings.SampleRate / 2.0 + 1e-9 then
        invalidArg "fmax" (sprintf "fmax %g is above the Nyquist frequency %g" settings.Mel.FMaxOrNyquist (float settings.SampleRate / 2.0))
    if kind = Mfcc && (settings.NMfcc < 1 || settings.NMfcc > settings.Mel.NMels) then
        invalidArg "n_mfcc" (sprintf "n_mfcc must be in 1..n_mels (%d), was %d" settings.Mel.NMels settings.NMfcc)

/// A stable fingerprint over the kind, the clip length and every parameter.
let fingerprint (settings: Settings) (kind: Kind) (clipSamples: int) =
    let text = sprintf "transform=%s;clip=%d;%A" (kindName kind) clipSamples settings
    Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes text)).ToLowerInvariant()

/// Scattering1D of a batch on the engine: [batch, paths, frames], or [batch, paths - 1] log-scattering means.
let private scatteringOn (engine: Engine) (settings: Settings) (clips: Tensor) =
    let dsp = engine.Dsp
    let batch, samples = clips.Shape.[0], clips.Shape.[1]
    let bank = Filters.Scattering1D(settings.Scattering, samples)
    let paths, frames = bank.Paths.Count, bank.Frames
    let s = engine.Allocate(batch, paths, frames)
    dsp.Scattering1D(settings.Scattering, clips, s)
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

/// Runs the transform on a batch already on the engine: clips [batch, samples] -> [batch, rows, frames]
/// ([batch, paths - 1] for the log-scattering mean).
let computeOn (engine: Engine) (settings: Settings) (kind: Kind) (clips: Tensor) =
    if kind = Scattering then scatteringOn engine settings clips else
    let dsp = engine.Dsp
    let batch, samples = clips.Shape.[0], clips.Shape.[1]
    let s = shape settings kind samples
    let frames = s.[1]
    let bins = settings.Stft.Bins
    let spectrogram (spectrum: SpectrumKind) =
        let t = engine.Allocate(batch, bins, frames)
        dsp.Stft(settings.Stft, clips, t, spectrum)
        t
    let powerKind = if settings.Power = 2.0 then SpectrumKind.Power else SpectrumKind.Magnitude
    let output = engine.Allocate(batch, s.[0], frames)
    let perFrame () = output.Reshape(batch, frames)
    let nFft = settings.Stft.NFft
    match kind with
    | Stft ->
        dsp.Stft(settings.Stft, clips, output, powerKind)
    | Mel | LogMel | Mfcc ->
        let power = if kind = Mfcc then SpectrumKind.Power else powerKind
        use spec = spectrogram power
        if kind = Mel then dsp.Mel(settings.Mel, nFft, spec, output)
        else
            use mel = engine.Allocate(batch, settings.Mel.NMels, frames)
            dsp.Mel(settings.Mel, nFft, spec, mel)
            if kind = LogMel then
                if power = SpectrumKind.Power then dsp.PowerToDb(settings.Db, mel, output) else dsp.AmplitudeToDb(settings.Db, mel, output)
            else
                dsp.PowerToDb(settings.Db, mel, mel)
                dsp.Mfcc(settings.NMfcc, float32 settings.Lifter, mel, output)
    | Centroid | Bandwidth | Rolloff | Flatness ->
        use spec = spectrogram SpectrumKind.Magnitude
        match kind with
        | Centroid -> dsp.SpectralCentroid(settings.SampleRate, nFft, spec, perFrame ())
        | Bandwidth -> dsp.SpectralBandwidth(settings.SampleRate, nFft, 2.0f, spec, perFrame ())
        | Rolloff -> dsp.SpectralRolloff(settings.SampleRate, nFft, 0.85f, spec, perFrame ())
        | _ -> dsp.SpectralFlatness(1e-10f, 2.0f, spec, perFrame ())
    | Zcr -> dsp.ZeroCrossingRate(nFft, settings.Stft.Hop, settings.Stft.Center, clips, perFrame ())
    | Rms -> dsp.Rms(nFft, settings.Stft.Hop, settings.Stft.Center, settings.Stft.PadMode, clips, perFrame ())
    | Chroma ->
        use spec = spectrogram SpectrumKind.Power
        match settings.Tuning with
        | Some tuning -> dsp.Chroma(settings.SampleRate, nFft, 12, float32 tuning, spec, output)
        | None -> Tuning.ChromaStft(engine, spec, settings.SampleRate, nFft, 12, output) |> ignore
    | Scattering -> () // computed by scatteringOn above
    output

/// The transform as a batched extractor on an engine for clips of `clipSamples` samples.
let extractor (engine: Engine) (settings: Settings) (kind: Kind) (clipSamples: int) : Pipeline.Extractor =
    validate settings kind
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
            use output = computeOn engine settings kind input
            output.ToArray() }

/// A generated feature schema (Hybrid.Features.Schemas) as a batched extractor on an engine. A schema that
/// accepts clips of any length (ClipSamples 0) is run on clips of `anyLength` samples.
let ofSchema (engine: Engine) (anyLength: int) (schema: Hybrid.Features.Schemas.FeatureSchemaInfo) : Pipeline.Extractor =
    let clipSamples = if schema.ClipSamples > 0 then schema.ClipSamples else anyLength
    if clipSamples <= 0 then invalidArg (nameof anyLength) (sprintf "schema '%s' accepts any clip length; give a positive length, was %d" schema.Name anyLength)
    { Name = schema.Name
      Fingerprint = schema.Fingerprint
      Length = schema.Length
      Shape = Array.ofSeq schema.Shape
      SampleRate = schema.SampleRate
      ClipSamples = clipSamples
      ExtractBatch =
        fun clips n ->
            use input = engine.FromHost(ReadOnlySpan clips, n, clipSamples)
            schema.Extract(engine, input) }
