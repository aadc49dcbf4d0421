/// OnnxExport: models that `train` wrote, exported to ONNX and run on ONNX Runtime (CPU), give predict's probabilities
/// (no test-time averaging) on 50 held-out FSDD clips, from features and, with the front end, from raw audio.
module Hybrid.ClassifierTests.OnnxExportTests

open System
open System.IO
open Expecto
open Hybrid.TestSupport.Speed
open Microsoft.ML.OnnxRuntime
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.Classifier
open Hybrid.Features
open Hybrid.Features.Schemas
open Hybrid.TestSupport
open Hybrid.ClassifierTests.OnnxTests

/// The clips of `files` at `rate`, cut or zero-padded (centred) to `clipSamples` (0: whole), row after row.
let private clipsAt (rate: int) (clipSamples: int) (files: string list) =
    files
    |> List.map (fun f ->
        let samples = (AudioFile.read { AudioFile.defaults with SampleRate = Some rate } f).Samples[0]
        if clipSamples > 0 then Clip.fit clipSamples Clip.Center samples else samples)
    |> Array.ofList

/// Features as the library extracts them (the schema on the managed engine), [clips; schema length].
let private featuresOf (schema: FeatureSchemaInfo) (clips: float32[][]) =
    use engine = new ManagedEngine(2)
    Extraction.rows engine schema clips

let private probabilitiesOf (predictions: Prediction list) =
    let rows = Array.ofList predictions
    Array2D.init rows.Length rows[0].Probabilities.Length (fun i j -> float32 (snd rows[i].Probabilities[j]))

let private parityOf (recipe: string) (modelOf: string -> string) (frontend: bool) (tolerance: float) =
    TestData.testWithFsdd (sprintf "%s%s: ONNX Runtime's probabilities equal predict's within %g on 50 clips" recipe (if frontend then " with the front end, from raw audio," else "") tolerance) (fun fsdd ->
        let modelPath = modelOf fsdd
        let files = TrainedModels.heldOut fsdd
        let expected = Inference.predict "managed" ignore modelPath files |> probabilitiesOf
        let onnx = Path.Combine(TrainedModels.scratch recipe, "model.onnx")
        let exported = OnnxExport.export modelPath onnx frontend
        let meta = dict exported.Metadata
        let schema = Extraction.replay meta["feature_schema"] meta["feature_parameters"]
        let plan =
            use engine = new ManagedEngine(1)
            (Inference.load engine modelPath).Preparation.Clips
        let clips =
            if meta["input_is"] = "clip" then clipsAt (int meta["sample_rate"]) (int meta["clip_samples"]) files
            else
                // Trimmed (or levelled) models: the whole recording when the graph prepares it, else the clip predict
                // prepares (ClipPlan.windows, then the centred fit).
                files |> List.map (fun f ->
                    let recording = ClipPlan.load plan f
                    if meta["input_is"] = "recording" then recording
                    else Clip.fit (int meta["clip_samples"]) Clip.Center (ClipPlan.windows plan recording).[0]) |> Array.ofList
        let actual =
            if frontend && (int meta["clip_samples"] = 0 || meta["input_is"] = "recording") then
                // Whole recordings of different lengths: one clip per run, the length axis dynamic.
                clips |> Array.collect (fun c -> runOnnx onnx exported.Input [| c.Length |] c)
            else
                let input = if frontend then Array.concat clips else featuresOf schema clips
                runOnnx onnx exported.Input exported.InputShape input
        let d = maxDifference expected actual
        let k = expected.GetLength 1
        // How much the probabilities move from clip to clip: outputs that hardly depend on the input would make the
        // comparison weak.
        let spread = Seq.max (seq { for j in 0 .. k - 1 -> (Seq.max (seq { for i in 0 .. files.Length - 1 -> expected[i, j] })) - (Seq.min (seq { for i in 0 .. files.Length - 1 -> expected[i, j] })) })
        eprintfn "onnx parity %s%s: max |ONNX Runtime - predict| = %.3g over %d x %d probabilities (largest spread of a class's probability over clips %.3f)" recipe (if frontend then " (front end)" else "") d files.Length k spread
        Expect.isGreaterThan spread 0.01f "the probabilities depend on the clip"
        Expect.isLessThan d tolerance (sprintf "max |ONNX Runtime - predict| = %g" d))

let private parity (recipe: string) = parityOf recipe (fun fsdd -> TrainedModels.model fsdd recipe)

[<Tests>]
let tests =
    testSequenced << slow <| testList "OnnxExport" [
        for recipe in [ "cnn2d"; "cnn1d"; "mlp"; "logreg"; "scattering" ] do
            parity recipe false 1e-4
        for recipe in [ "cnn2d"; "cnn1d"; "mlp" ] do
            parity recipe true 1e-3
        // dB by the extraction's rule at every power: amplitude_to_db of a magnitude (power 1) mel spectrogram.
        parityOf "cnn2d at power 1 (amplitude_to_db)" (fun fsdd -> TrainedModels.variant fsdd "power1") true 1e-3
        parityOf "cnn2d with per-utterance mean and variance normalisation" (fun fsdd -> TrainedModels.variant fsdd "meanvar") true 1e-3
        // Trimming and levelling in the graph, from whole recordings, and a model that keeps recordings whole.
        parityOf "cnn2d trimmed at top_db 30 and levelled to -20 dBFS" (fun fsdd -> TrainedModels.variant fsdd "trimmed") true 1e-3
        parityOf "cnn2d trimmed at top_db 30 and levelled to -20 dBFS (features)" (fun fsdd -> TrainedModels.variant fsdd "trimmed") false 1e-4
        parityOf "cnn2d keeping recordings whole" (fun fsdd -> TrainedModels.variant fsdd "untrimmed") true 1e-3
        // PCEN's smoothing filter as a MatMul over the clip's frames, in float32.
        parityOf "cnn2d with PCEN" (fun fsdd -> TrainedModels.variant fsdd "pcen") false 1e-4
        parityOf "cnn2d with PCEN" (fun fsdd -> TrainedModels.variant fsdd "pcen") true 1e-3

        TestData.testWithFsdd "metadata_props hold the labels in output order, the schema fingerprint, rate, clip length and alignment" (fun fsdd ->
            let modelPath = TrainedModels.model fsdd "cnn2d"
            let onnx = Path.Combine(TrainedModels.scratch "meta", "model.onnx")
            let exported = OnnxExport.export modelPath onnx true
            let _, info = ModelFile.inspect modelPath
            use session = new InferenceSession(onnx)
            let meta = session.ModelMetadata.CustomMetadataMap
            Expect.equal meta["labels"] (String.Join(",", info.Labels)) "labels"
            Expect.equal meta["schema_fingerprint"] info.SchemaFingerprint "fingerprint"
            Expect.stringContains meta["feature_parameters"] "n_fft=512" "the run-time parameters (cnn2d's n_fft)"
            Expect.equal (Extraction.replay meta["feature_schema"] meta["feature_parameters"]).Fingerprint info.SchemaFingerprint
                "schema name and parameters give the fingerprint back"
            Expect.equal meta["sample_rate"] "8000" "rate"
            Expect.equal meta["clip_samples"] "8192" "clip length"
            Expect.equal meta["clip_alignment"] "center" "alignment"
            Expect.equal (List.ofSeq session.InputNames) [ "audio" ] "raw-audio input"
            // The recipe trims utterances: the graph takes the whole recording and says how predict prepares it.
            Expect.equal meta["trim"] "20:256:64" "the recorded trim"
            Expect.equal meta["input_is"] "recording" "one whole recording in, trimmed and fitted by the graph"
            Expect.equal exported.InputShape [| 0 |] "any length"
            Expect.equal meta["segment"] "none" "no windows"
            Expect.equal meta["windows_in_graph"] "true" "the graph prepares the recording as predict does"
            Expect.isEmpty exported.Warnings "nothing predict does is left out of the graph"
            // Without the front end the clip must come prepared: the export says so.
            let featuresOnly = OnnxExport.export modelPath (Path.Combine(TrainedModels.scratch "meta", "features.onnx")) false
            Expect.isTrue (featuresOnly.Warnings |> List.exists (fun w -> w.Contains "trims silence" && w.Contains "--frontend"))
                (sprintf "the features-only export warns that recordings must be trimmed first: %A" featuresOnly.Warnings)
            Expect.equal (dict featuresOnly.Metadata).["windows_in_graph"] "false" "features in: the consumer prepares the clip")

        TestData.testWithFsdd "the front end of a schema the graph cannot express (genre: chroma and spectral statistics) is refused naming the schema" (fun fsdd ->
            let modelPath = TrainedModels.model fsdd "logreg"
            let onnx = Path.Combine(TrainedModels.scratch "refused", "model.onnx")
            try
                OnnxExport.export modelPath onnx true |> ignore
                failtest "expected OnnxExportException"
            with :? OnnxExportException as e ->
                Expect.stringContains e.Message "'genre'" "names the schema"
                Expect.stringContains e.Message modelPath "names the model file"
            Expect.isFalse (File.Exists onnx) "nothing written")

        TestData.testWithFsdd "the scattering front end is refused naming the schema; its features-only export is not" (fun fsdd ->
            let modelPath = TrainedModels.model fsdd "scattering"
            let onnx = Path.Combine(TrainedModels.scratch "refused-scattering", "model.onnx")
            try
                OnnxExport.export modelPath onnx true |> ignore
                failtest "expected OnnxExportException"
            with :? OnnxExportException as e ->
                Expect.stringContains e.Message "'scattering-fsdd-parts4'" "names the schema"
            Expect.isFalse (File.Exists onnx) "nothing written"
            OnnxExport.export modelPath onnx false |> ignore
            Expect.isTrue (File.Exists onnx) "features-only export written")
    ]
