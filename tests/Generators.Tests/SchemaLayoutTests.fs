/// The run-time schema layout (src/Features.Schemas/SchemaLayout.cs) and run-time variants: a schema laid out at run
/// time gets exactly the generator's names, shape, members and fingerprint (one fingerprint scheme), a variant equals
/// the declaration compiled with the same parameters, and invalid parameters are refused as the generator refuses them.
module Hybrid.GeneratorsTests.SchemaLayoutTests

open System
open Expecto
open Hybrid.Dsp.Managed
open Hybrid.Features
open Hybrid.Features.Schemas
open Hybrid.GeneratorsTests.Driver
open Hybrid.GeneratorsTests.FeatureSchemaGeneratorTests

/// Mel bands in dB at power 1: the schema whose rows (and so fingerprint) follow librosa's amplitude_to_db rule.
let private powerOneSource =
    """
[FeatureSchema("power-one", SampleRate = 8000, ClipSamples = 4096, NFft = 256, HopLength = 128, NMels = 24, Power = 1)]
public sealed partial record PowerOne
{
    [MelBands(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> LogMel { get; }
}
"""

let private expectSameLayout (actual: FeatureSchemaInfo) (expected: FeatureSchemaInfo) (what: string) =
    Expect.sequenceEqual actual.Names expected.Names (what + ": column names")
    Expect.sequenceEqual actual.Shape expected.Shape (what + ": shape")
    Expect.sequenceEqual actual.Members expected.Members (what + ": members")
    Expect.equal actual.Parameters expected.Parameters (what + ": parameters")
    Expect.equal actual.Fingerprint expected.Fingerprint (what + ": fingerprint")

let private compiled = lazy (
    [ compileSchema everythingSource "Everything"
      compileSchema powerOneSource "PowerOne" ])

let private rowsOf (info: FeatureSchemaInfo) (batch: int) (samples: int) =
    use engine = new ManagedEngine()
    let x = FeatureSchemaInfoTests.clips batch samples info.SampleRate
    use t = engine.FromHost(ReadOnlySpan x, batch, samples)
    info.Extract(engine, t)

[<Tests>]
let tests =
    testList "SchemaLayout" [
        testCase "a generated schema laid out again at run time has the generator's names, shape, members and fingerprint" <| fun () ->
            for info in List.ofSeq Schemas.All @ compiled.Force() do
                let again = FeatureSchemaInfo.Create(info.Name, info.Parameters, Array.ofSeq info.Members)
                expectSameLayout again info info.Name

        testCase "a declaration with its own parameters is its own variant" <| fun () ->
            for info in List.ofSeq Schemas.All @ compiled.Force() do
                let same = info.WithParameters(info.Parameters)
                Expect.isTrue (Object.ReferenceEquals(same, info)) (info.Name + ": the declaration itself")
                Expect.isFalse info.IsVariant (info.Name + ": not a variant")
                Expect.equal info.Variant "" (info.Name + ": no differences")

        testCase "a variant equals the declaration compiled with the same parameters" <| fun () ->
            let cases =
                [ "genre n_fft 1024",
                  Extraction.variant GenreFeatures.Info { Extraction.noOverrides with NFft = Some 1024 },
                  compileSchema (genreSource "Genre1024" "genre-1024" ", NFft = 1024, EstimateTuning = true") "Genre1024"
                  "genre 16 kHz, 13 MFCCs, 3 s clips",
                  Extraction.variant GenreFeatures.Info { Extraction.noOverrides with Sr = Some 16000; NMfcc = Some 13; ClipSamples = Some 48000 },
                  compileSchema ((genreSource "Genre16k" "genre-16k" ", SampleRate = 16000, NMfcc = 13, ClipSamples = 48000, EstimateTuning = true").Replace("Mfcc(20,", "Mfcc(13,")) "Genre16k"
                  "logmel-fsdd at 16 kHz, 1 s, 64 mels",
                  Extraction.variant LogMelFsddFeatures.Info { Extraction.noOverrides with Sr = Some 16000; ClipSamples = Some 16000; NMels = Some 64 },
                  compileSchema
                      """
[FeatureSchema("logmel-16k", SampleRate = 16000, ClipSamples = 16000, NFft = 256, HopLength = 128, NMels = 64)]
public sealed partial record LogMel16k
{
    [MelBands(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> LogMel { get; }
}
"""
                      "LogMel16k"
                  "raw8192 as 16,000 samples",
                  Extraction.variant Raw8192Features.Info { Extraction.noOverrides with ClipSamples = Some 16000 },
                  compileSchema
                      """
[FeatureSchema("raw-16000", SampleRate = 8000, ClipSamples = 16000)]
public sealed partial record Raw16000
{
    [Waveform(16000)] public partial ReadOnlyMemory<float> Waveform { get; }
}
"""
                      "Raw16000"
                  "everything n_fft 1024",
                  Extraction.variant (compiled.Force().[0]) { Extraction.noOverrides with NFft = Some 1024 },
                  compileSchema (everythingSource.Replace("NFft = 512", "NFft = 1024")) "Everything" ]
            for what, variant, declaration in cases do
                Expect.isTrue variant.IsVariant (what + ": a variant")
                expectSameLayout variant declaration what
                Expect.notEqual variant.Fingerprint variant.Base.Fingerprint (what + ": its own fingerprint")

        testCase "a variant extracts the rows of the declaration compiled with its parameters, bit for bit" <| fun () ->
            let variant = Extraction.variant GenreFeatures.Info { Extraction.noOverrides with NFft = Some 1024; NMels = Some 64 }
            let declaration = compileSchema (genreSource "GenreSmall" "genre-small" ", NFft = 1024, NMels = 64, EstimateTuning = true") "GenreSmall"
            Expect.sequenceEqual (rowsOf variant 2 6000) (rowsOf declaration 2 6000) "same rows"
            Expect.notEqual (rowsOf variant 2 6000) (rowsOf GenreFeatures.Info 2 6000) "other rows than the declaration's"

        testCase "a variant's parameters round-trip through its Variant text" <| fun () ->
            let variant = Extraction.variant LogMelFsddFeatures.Info { Extraction.noOverrides with NFft = Some 512; FMin = Some 20.0; Other = [ "top_db", "none"; "window", "hamming" ] }
            Expect.equal variant.Variant "n_fft=512,win_length=512,window=hamming,fmin=20,top_db=none" "the differences"
            let replayed = Extraction.replay "logmel-fsdd" variant.Variant
            expectSameLayout replayed variant "replayed"
            Expect.equal (LogMelFsddFeatures.Info.Parameters.With variant.Variant) variant.Parameters "With reads DifferencesFrom"

        testCase "invalid parameters are refused with the librosa name and the generator's valid range" <| fun () ->
            let refused (info: FeatureSchemaInfo) (settings: string) : ArgumentException =
                try
                    info.WithParameters(info.Parameters.With settings) |> ignore
                    failtestf "%s: expected ArgumentException" settings
                with :? ArgumentException as e -> e
            for info, settings, name, text in
                [ LogMelFsddFeatures.Info, "n_fft=1,win_length=1,hop_length=1", "n_fft", "n_fft must be in 2..16384, was 1"
                  GenreFeatures.Info, "top_db=0", "top_db", "top_db must be positive"
                  GenreFeatures.Info, "hop_length=4096", "hop_length", "hop_length (4096) must not exceed n_fft (2048)"
                  GenreFeatures.Info, "fmax=12000", "fmax", "must not exceed the Nyquist frequency sr / 2 (11025 Hz)"
                  GenreFeatures.Info, "fmin=11025", "fmin", "fmin (11025 Hz) must be below fmax (11025 Hz)"
                  MfccMean40Features.Info, "n_mels=20", "n_mfcc", "asks for 40 MFCCs, but the DCT of n_mels = 20 bands gives at most 20"
                  LogMelFsddFeatures.Info, "clip_samples=0", "clip_samples", "keeps a time series, which needs the schema's clip_samples"
                  LogMelFsddFeatures.Info, "center=false,clip_samples=100", "clip_samples", "no frames: clips of 100 samples are shorter than the frame length 256" ] do
                let e = refused info settings
                Expect.equal e.ParamName name (sprintf "%s: the parameter" settings)
                Expect.stringContains e.Message text (sprintf "%s: the valid range" settings)
                Expect.stringContains e.Message (sprintf "Feature schema '%s'" info.Name) (sprintf "%s: the schema" settings)

        testCase "unreadable parameter text names the pair" <| fun () ->
            Expect.throwsT<FormatException> (fun () -> GenreFeatures.Info.Parameters.With "n_fft=big" |> ignore) "a number that is not one"
            let e2 = Expect.throwsC (fun () -> GenreFeatures.Info.Parameters.With "nfft=512" |> ignore) id
            Expect.stringContains e2.Message "unknown parameter 'nfft'" "the unknown name"

        testCase "mel bands in dB at power 1 are amplitude_to_db of the magnitude mel spectrogram" <| fun () ->
            let info = compiled.Force().[1]
            use engine = new ManagedEngine()
            let x = FeatureSchemaInfoTests.clips 2 4096 8000
            use clips = engine.FromHost(ReadOnlySpan x, 2, 4096)
            let p = info.Parameters
            let frames = p.Stft.FrameCount 4096
            use spec = engine.Allocate(2, p.Stft.Bins, frames)
            engine.Dsp.Stft(p.Stft, clips, spec, Hybrid.Dsp.SpectrumKind.Magnitude)
            use mel = engine.Allocate(2, 24, frames)
            engine.Dsp.Mel(p.Mel, p.NFft, spec, mel)
            use db = engine.Allocate(2, 24, frames)
            engine.Dsp.AmplitudeToDb(Hybrid.Dsp.DbConfig(1.0, 1e-5, p.TopDb), mel, db)
            Expect.sequenceEqual (info.Extract(engine, clips)) (db.ToArray()) "amplitude_to_db"
    ]
