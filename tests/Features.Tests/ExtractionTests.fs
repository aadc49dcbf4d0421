module Hybrid.FeaturesTests.ExtractionTests

open System
open Expecto
open Hybrid.Dsp.Managed
open Hybrid.Features
open Hybrid.Features.Schemas

/// A deterministic test clip: a chirp-like tone whose content changes along the clip, plus a little noise.
let private clip (samples: int) (seed: int) =
    let rng = Random(seed)
    Array.init samples (fun i -> float32 (0.4 * sin (float i * (0.01 + 0.00002 * float i)) + 0.02 * (rng.NextDouble() - 0.5)))

/// The schema's executor on one clip as given, without any shaping.
let private extractWhole (schema: FeatureSchemaInfo) (samples: float32[]) =
    use engine = new ManagedEngine()
    use t = engine.FromHost(ReadOnlySpan samples, 1, samples.Length)
    schema.Extract(engine, t)

let private bits (a: float32[]) = a |> Array.map BitConverter.SingleToInt32Bits

[<Tests>]
let tests =
    testList "Extraction" [
        test "fit centres clips of a fixed-length schema and keeps whole clips for any-length schemas" {
            let long = clip 9000 1
            Expect.equal (Extraction.fit LogMelFsddFeatures.Info long) (Clip.fit 8192 Clip.Center long) "cut keeping the middle"
            let short = clip 5000 2
            Expect.equal (Extraction.fit LogMelFsddFeatures.Info short) (Clip.fit 8192 Clip.Center short) "padded on both sides"
            Expect.isTrue (Object.ReferenceEquals(Extraction.fit MfccMean40Features.Info long, long)) "the whole clip"
        }

        test "a batch large enough for the fused mel chain gives the bits of clips extracted one by one through the unfused chain" {
            // Twelve clips give each of the engine's two threads at least four, so the log-mel and MFCC schemas run the
            // fused pass (IDspOps.LogMelSpectrogram, the MFCC from clips); a batch of one falls back to Stft, Mel,
            // PowerToDb and Mfcc in turn.
            use engine = new ManagedEngine(2)
            for schema in [ LogMelFsddFeatures.Info; MfccMean40Features.Info ] do
                let clips = [| for i in 0 .. 11 -> Clip.fit 8192 Clip.Center (clip (7000 + 300 * i) (20 + i)) |]
                let batch = Array.concat clips
                use t = engine.FromHost(ReadOnlySpan batch, clips.Length, 8192)
                let fused = schema.Extract(engine, t)
                let oneByOne =
                    clips |> Array.collect (fun c ->
                        use single = engine.FromHost(ReadOnlySpan c, 1, 8192)
                        schema.Extract(engine, single))
                Expect.equal (bits fused) (bits oneByOne) $"{schema.Name}: row by row"
        }

        test "statistics of an any-length schema are taken over the whole clip" {
            use engine = new ManagedEngine()
            let track = clip 66150 3 // 3 s at 22,050 Hz
            let rows = Extraction.rows engine GenreFeatures.Info [| track |]
            Expect.equal (bits rows) (bits (extractWhole GenreFeatures.Info track)) "the executor on all 66,150 samples"
            let cut = extractWhole GenreFeatures.Info (Clip.fit Extraction.legacyAnyLengthClipSamples Clip.Center track)
            Expect.notEqual (bits rows) (bits cut) "not the 8,192-sample cut of earlier versions"
        }

        test "clips of mixed lengths keep their order and each is extracted whole" {
            use engine = new ManagedEngine()
            let clips = [| clip 7000 4; clip 12000 5; clip 7000 6; clip 30000 7 |]
            let rows = Extraction.rows engine MfccMean40Features.Info clips
            let expected = clips |> Array.collect (extractWhole MfccMean40Features.Info)
            Expect.equal (bits rows) (bits expected) "row by row"
        }

        test "a clip length derives a variant that pads or cuts to it, with its own fingerprint" {
            use engine = new ManagedEngine()
            let schema = Extraction.variant MfccMean40Features.Info { Extraction.noOverrides with ClipSamples = Some (Extraction.clipSamplesOf 22050 0.5) }
            Expect.equal schema.ClipSamples 11025 "0.5 s at 22,050 Hz"
            Expect.equal schema.Variant "clip_samples=11025" "recorded as a parameter difference"
            Expect.notEqual schema.Fingerprint MfccMean40Features.Fingerprint "rows of another clip length"
            let clips = [| clip 30000 8; clip 4000 9 |]
            let rows = Extraction.rows engine schema clips
            let expected = clips |> Array.collect (fun c -> extractWhole schema (Clip.fit 11025 Clip.Center c))
            Expect.equal (bits rows) (bits expected) "centred to 11,025 samples"
        }

        test "a fixed-length schema's variant at another rate and clip length reshapes its image" {
            let schema = Extraction.variant LogMelFsddFeatures.Info { Extraction.noOverrides with Sr = Some 16000; ClipSamples = Some 16000 }
            Expect.sequenceEqual schema.Shape [ 40; 126 ] "40 mels x 1 + 16000 / 128 frames"
            Expect.equal schema.Parameters.FMax 8000.0 "fmax declared as sr / 2 follows sr"
            Expect.equal schema.Variant "sr=16000,clip_samples=16000,fmax=8000" "the differences"
        }

        test "the legacy schema cuts any-length schemas to 8,192 samples and leaves fixed-length ones alone" {
            Expect.equal (Extraction.legacy GenreFeatures.Info).ClipSamples 8192 "genre on 8,192 samples"
            Expect.isTrue (Object.ReferenceEquals(Extraction.legacy LogMelFsddFeatures.Info, LogMelFsddFeatures.Info)) "logmel-fsdd unchanged"
        }

        test "rows do not depend on what earlier batches left in the reused buffers, and the clips are left as they were" {
            // 3 s clips of the genre table: their spectrograms (1,025 x 130) are large enough for the executor's pool.
            use engine = new ManagedEngine()
            let schema = GenreFeatures.Info
            let a = Array.init 5 (fun i -> clip 66150 (10 + i))
            let b = Array.init 5 (fun i -> clip 66150 (20 + i) |> Array.map (fun v -> v * 3.0f + 0.1f))
            let copies = a |> Array.map Array.copy
            let streamed (clips: float32[][]) =
                Extraction.stream engine schema (fun i -> clips.[i]) clips.Length 2 Progress.silent |> Seq.collect snd |> Array.ofSeq
            let first = streamed a
            streamed b |> ignore
            let again = streamed a
            Expect.equal (bits again) (bits first) "the same rows after other clips went through the same buffers"
            Expect.equal (bits first) (bits (a |> Array.collect (extractWhole schema))) "batched rows equal each clip extracted alone"
            Expect.equal a copies "the clips are unchanged (the managed engine reads the batch in place)"
        }

        test "overridesOn: each parameter given wins, the others come from the defaults" {
            let defaults = { Extraction.noOverrides with NFft = Some 512; HopLength = Some 128; Other = [ "top_db", "60"; "htk", "true" ] }
            let given = { Extraction.noOverrides with NFft = Some 1024; NMels = Some 64; Other = [ "top_db", "none" ] }
            let merged = Extraction.overridesOn defaults given
            Expect.equal (merged.NFft, merged.HopLength, merged.NMels, merged.FMin) (Some 1024, Some 128, Some 64, None) "given n_fft, default hop, given n_mels"
            Expect.equal (List.sort merged.Other) [ "htk", "true"; "top_db", "none" ] "other parameters merge by name, the given one winning"
            Expect.equal (Extraction.overridesOn defaults Extraction.noOverrides) defaults "nothing given: the defaults"
            Expect.equal (Extraction.overridesOn Extraction.noOverrides given) given "no defaults: what was given"
        }

        test "invalid overrides name the command-line option" {
            let e = Expect.throwsC (fun () -> Extraction.variant GenreFeatures.Info { Extraction.noOverrides with NMels = Some 0 } |> ignore) id
            Expect.stringContains e.Message "(option --n-mels)" "the option"
            Expect.stringContains e.Message "n_mels must be positive, was 0" "the range"
            let d = Expect.throwsC (fun () -> Extraction.clipSamplesOf 16000 -1.0 |> ignore) id
            Expect.stringContains d.Message "--duration" "the duration option"
        }
    ]
