module Hybrid.FeaturesTests.TransformsTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.Features

let private fsdd =
    { Transforms.defaults 8000 with
        Stft = StftConfig(NFft = 256, HopLength = 128)
        Mel = MelConfig(SampleRate = 8000, NMels = 40, FMax = 4000.0)
        NMfcc = 13 }

[<Tests>]
let tests =
    testList "Transforms" [
        test "every CLI name parses to its kind and back" {
            for (name, kind) in Transforms.kindNames do
                Expect.equal (Transforms.parseKind name) kind (sprintf "parse %s" name)
                Expect.equal (Transforms.kindName kind) name (sprintf "name of %A" kind)
        }
        test "an unknown transform name is refused with the valid names" {
            let e = Expect.throwsC (fun () -> Transforms.parseKind "cqt" |> ignore) id
            Expect.stringContains e.Message "logmel" "expected the valid names in the message"
        }
        test "shapes follow librosa's frame count and each kind's rows" {
            Expect.equal (Transforms.shape fsdd Transforms.LogMel 8192) [| 40; 65 |] "FSDD log-mel image"
            Expect.equal (Transforms.shape fsdd Transforms.Stft 8192) [| 129; 65 |] "power spectrogram"
            Expect.equal (Transforms.shape fsdd Transforms.Mfcc 8192) [| 13; 65 |] "MFCC"
            Expect.equal (Transforms.shape fsdd Transforms.Chroma 8192) [| 12; 65 |] "chroma"
            Expect.equal (Transforms.shape fsdd Transforms.Zcr 8192) [| 65 |] "ZCR (one row: frames only, the schema rule)"
        }
        test "column names enumerate rows then frames, 1-based as every schema's" {
            let names = Transforms.names fsdd Transforms.Mfcc 256
            Expect.equal names.Length (13 * 3) "13 x 3 names"
            Expect.equal names.[0] "mfcc1_1" "first name"
            Expect.equal names.[4] "mfcc2_2" "row-major order"
            Expect.equal (Transforms.names fsdd Transforms.Rms 256).[2] "rms3" "one-row names"
        }
        test "the fingerprint changes with any parameter and is stable otherwise" {
            let f = Transforms.fingerprint fsdd Transforms.LogMel 8192
            Expect.equal (Transforms.fingerprint fsdd Transforms.LogMel 8192) f "stable"
            Expect.notEqual (Transforms.fingerprint { fsdd with Stft = StftConfig(NFft = 256, HopLength = 64) } Transforms.LogMel 8192) f "hop"
            Expect.notEqual (Transforms.fingerprint { fsdd with Mel = MelConfig(SampleRate = 8000, NMels = 40, FMax = 3800.0) } Transforms.LogMel 8192) f "fmax"
            Expect.notEqual (Transforms.fingerprint fsdd Transforms.Mel 8192) f "kind"
            Expect.notEqual (Transforms.fingerprint fsdd Transforms.LogMel 8000) f "clip length"
        }
        test "the chroma transform and the genre schema's chroma column match librosa's chroma_stft (estimated tuning) within 0.5%" {
            use engine = new Managed.ManagedEngine()
            let sr, y = Hybrid.TestSupport.TestData.harmonicSignal.Value
            let reference = Hybrid.TestSupport.TestData.chromaReference.Value
            let expected = reference.GetProperty("chroma_stft_mean").GetDouble()
            let settings = Transforms.defaults sr
            let chroma = (Transforms.extractor engine settings Transforms.Chroma y.Length).ExtractBatch y 1
            let mean = chroma |> Array.averageBy float
            Expect.floatClose { absolute = 0.0; relative = 0.005 } mean expected "chroma transform (tuning estimated)"
            let fixed0 = (Transforms.extractor engine { settings with Tuning = Some 0.0 } Transforms.Chroma y.Length).ExtractBatch y 1
            Expect.floatClose { absolute = 0.0; relative = 0.005 } (fixed0 |> Array.averageBy float) (reference.GetProperty("chroma_stft_tuning0_mean").GetDouble()) "--tuning 0"
            let genre = Hybrid.Features.Schemas.Schemas.ByName "genre"
            let row = Extraction.rows engine genre [| y |]
            let column = float row.[Seq.findIndex ((=) "chroma_stft") genre.Names]
            printfn "genre chroma_stft %.6f, librosa %.6f (%.3f%%)" column expected (100.0 * abs (column - expected) / expected)
            Expect.floatClose { absolute = 0.0; relative = 0.005 } column expected "genre schema's chroma_stft column"
        }
        test "invalid settings are refused naming the parameter" {
            use engine = new Managed.ManagedEngine()
            let bad = { fsdd with Mel = MelConfig(SampleRate = 8000, NMels = 40, FMax = 5000.0) }
            let e = Expect.throwsC (fun () -> Transforms.extractor engine bad Transforms.Mel 8192 |> ignore) id
            Expect.stringContains e.Message "fmax" "expected fmax named"
            let e2 = Expect.throwsC (fun () -> Transforms.extractor engine { fsdd with NMfcc = 41 } Transforms.Mfcc 8192 |> ignore) id
            Expect.stringContains e2.Message "n_mfcc" "expected n_mfcc named"
        }
    
        test "a transform's fingerprint is the schema fingerprint of its one-member schema" {
            let schema = Transforms.schema fsdd Transforms.LogMel 8192
            Expect.equal (Transforms.fingerprint fsdd Transforms.LogMel 8192) schema.Fingerprint "one fingerprint scheme"
            Expect.equal schema.Fingerprint.Length 64 "SHA-256 hex"
            Expect.sequenceEqual schema.Shape [ 40; 65 ] "schema shape"
        }
        test "log-mel follows librosa's dB rule for the power: power_to_db at 2, amplitude_to_db at 1" {
            use engine = new Managed.ManagedEngine()
            let n = 4000
            let x = Array.init (2 * n) (fun i -> float32 (0.4 * sin (float i * 0.07) + 0.1 * sin (float i * 0.9)))
            for power, spectrum in [ 2.0, SpectrumKind.Power; 1.0, SpectrumKind.Magnitude ] do
                let settings = { fsdd with Power = power }
                let rows = (Transforms.extractor engine settings Transforms.LogMel n).ExtractBatch x 2
                use clips = engine.FromHost(ReadOnlySpan x, 2, n)
                let frames = settings.Stft.FrameCount n
                use spec = engine.Allocate(2, settings.Stft.Bins, frames)
                engine.Dsp.Stft(settings.Stft, clips, spec, spectrum)
                use mel = engine.Allocate(2, 40, frames)
                engine.Dsp.Mel(settings.Mel, settings.Stft.NFft, spec, mel)
                use db = engine.Allocate(2, 40, frames)
                if power = 2.0 then engine.Dsp.PowerToDb(DbConfig(1.0, 1e-10, Nullable 80.0), mel, db)
                else engine.Dsp.AmplitudeToDb(DbConfig(1.0, 1e-5, Nullable 80.0), mel, db)
                Expect.sequenceEqual rows (db.ToArray()) (sprintf "power %g" power)
        }
        test "MFCC at power 1 is the DCT of power_to_db of the magnitude mel spectrogram, as librosa.feature.mfcc" {
            use engine = new Managed.ManagedEngine()
            let n = 3000
            let x = Array.init n (fun i -> float32 (0.3 * sin (float i * 0.11)))
            let settings = { fsdd with Power = 1.0 }
            let rows = (Transforms.extractor engine settings Transforms.Mfcc n).ExtractBatch x 1
            use clips = engine.FromHost(ReadOnlySpan x, 1, n)
            let frames = settings.Stft.FrameCount n
            use spec = engine.Allocate(1, settings.Stft.Bins, frames)
            engine.Dsp.Stft(settings.Stft, clips, spec, SpectrumKind.Magnitude)
            use mel = engine.Allocate(1, 40, frames)
            engine.Dsp.Mel(settings.Mel, settings.Stft.NFft, spec, mel)
            use db = engine.Allocate(1, 40, frames)
            engine.Dsp.PowerToDb(DbConfig(1.0, 1e-10, Nullable 80.0), mel, db)
            use mfcc = engine.Allocate(1, 13, frames)
            engine.Dsp.Mfcc(13, 0.0f, db, mfcc)
            Expect.sequenceEqual rows (mfcc.ToArray()) "MFCC at power 1"
        }
    ]
