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
            Expect.equal (Transforms.shape fsdd Transforms.Zcr 8192) [| 1; 65 |] "ZCR"
        }
        test "column names enumerate rows then frames" {
            let names = Transforms.names fsdd Transforms.Mfcc 256
            Expect.equal names.Length (13 * 3) "13 x 3 names"
            Expect.equal names.[0] "mfcc0_t0" "first name"
            Expect.equal names.[4] "mfcc1_t1" "row-major order"
            Expect.equal (Transforms.names fsdd Transforms.Rms 256).[2] "rms_t2" "one-row names"
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
            let row = (Transforms.ofSchema engine y.Length genre).ExtractBatch y 1
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
    ]
