/// `hybrid export`: a model file written by `train` as an ONNX model (opset 17), optionally with the feature
/// extraction in the graph.
module Hybrid.Cli.ExportCommand

open System.IO
open System.Text.Json
open Argu
open Hybrid.Classifier

/// The options of `export`.
type ExportArgs =
    | [<Mandatory>] Model of file: string
    | [<Mandatory>] Onnx of file: string
    | Frontend
    | Json

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Model _ -> "model file written by train (RUN/model.hnn)."
            | Onnx _ -> "ONNX file to write."
            | Frontend -> "put the feature extraction in the graph: it then takes raw audio at the model's rate, one whole recording [1, samples] that it prepares, cuts into windows and averages over test-time speeds as predict does (or clips [batch, clip_samples] for a model that only fits recordings to its clip)."
            | Json -> "print what was written as one JSON object."

/// The option table of `export` (OptionRules): every option applies to every model file; --frontend for a model
/// whose recipe has no front end the graph can hold is refused by OnnxExport, which reads the model file.
let private table (arg: ExportArgs) : OptionRules.Check list =
    match arg with
    | Model _ | Onnx _ | Frontend | Json -> []

/// Runs the command. Exit codes: 0 done; 1 the model could not be used or exported; 2 bad options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    Command.run<ExportArgs> "export" out error argv (fun args ->
        OptionRules.enforce args table
        let exported = OnnxExport.export (args.GetResult Model) (args.GetResult Onnx) (args.Contains Frontend)
        if args.Contains Json then
            let summary = {| path = exported.Path; input = exported.Input; input_shape = exported.InputShape; metadata = dict exported.Metadata; warnings = exported.Warnings |}
            out.WriteLine(JsonSerializer.Serialize summary)
        else
            for w in exported.Warnings do error.WriteLine("warning: " + w)
            let meta = dict exported.Metadata
            if meta["input_is"] = "recording" then
                // Only the steps this model has: "none" settings are left out of the sentence.
                let given (key: string) = meta.ContainsKey key && meta[key] <> "none" && meta[key] <> ""
                let steps =
                    [ if given "trim" then sprintf "trims (%s)" meta["trim"]
                      if given "loudness" then sprintf "levels to %s dBFS" meta["loudness"]
                      if given "segment" then sprintf "cuts into windows (%s samples, window/hop)" meta["segment"]
                      sprintf "fits %s to %s samples (%s) for %s" (if given "segment" then "each window" else "it") meta["clip_samples"] meta["clip_alignment"] meta["feature_schema"]
                      if given "test_speeds" then sprintf "averages over the test-time speeds (%s)" meta["test_speeds"]
                      if given "segment" then "averages the windows" ]
                out.WriteLine(sprintf "wrote %s: input '%s' [1, samples]: one whole recording of any length at %s Hz per run, which the graph %s, as predict does; output 'probabilities' [1, classes] over %s"
                                  exported.Path exported.Input meta["sample_rate"] (String.concat ", " steps) meta["labels"])
            else
                out.WriteLine(sprintf "wrote %s: input '%s' [batch, %s] (%s at %s Hz, %s samples, %s alignment), output 'probabilities' over %s"
                                  exported.Path exported.Input (System.String.Join(", ", exported.InputShape)) meta["feature_schema"]
                                  meta["sample_rate"] meta["clip_samples"] meta["clip_alignment"] meta["labels"])
        0)
