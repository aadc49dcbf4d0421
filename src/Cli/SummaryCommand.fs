/// `hybrid summary`: a model file's layers, output shapes and parameter counts (Keras' `model.summary()`), and the input
/// it was trained on.
module Hybrid.Cli.SummaryCommand

open System
open System.Globalization
open System.IO
open System.Text.Json
open Argu
open Hybrid.Classifier

/// The options of `summary`.
type SummaryArgs =
    | [<Mandatory>] Model of file: string
    | Json

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Model _ -> "model file written by train (RUN/model.hnn)."
            | Json -> "print the summary as one JSON object (layers, parameter totals, file size, input, classes, settings)."

/// The option table of `summary` (OptionRules): every option applies to every model file.
let private table (arg: SummaryArgs) : OptionRules.Check list =
    match arg with
    | Model _ | Json -> []

/// A count with thousands separators, e.g. "23,466".
let private count (n: int64) = n.ToString("N0", CultureInfo.InvariantCulture)

/// A number of seconds, e.g. "1.024 s".
let private secondsText (s: float) = s.ToString("0.###", CultureInfo.InvariantCulture) + " s"

/// A shape with None as the batch axis, as Keras prints it: "(None, 16, 40, 65)".
let private shapeText (shape: int[]) = "(None, " + String.Join(", ", shape) + ")"

/// The input's lines as (name, value) pairs: rate and clip, features, preparation, test speeds.
let private inputRows (s: ModelSummary) : (string * string) list =
    let prepared =
        match s.Input with
        | Some i ->
            let features = if i.FeatureParameters = "" then i.Features else sprintf "%s (%s)" i.Features i.FeatureParameters
            let windows =
                match i.Segment with
                | Some (w, h) -> sprintf "%s every %s, averaged per recording" (secondsText w) (secondsText h)
                | None -> "none (one clip per recording)"
            [ "sample rate", sprintf "%d Hz" i.SampleRate
              "clip", sprintf "%d samples (%s)" i.ClipSamples (secondsText (float i.ClipSamples / float i.SampleRate))
              "features", sprintf "%s, rows of shape [%s]" features (String.Join("; ", i.FeatureShape))
              "per-utterance", i.PerUtterance
              "trim", i.Trim
              "loudness", (match i.Loudness with Some d -> sprintf "%g dBFS RMS" d | None -> "none")
              "recording length", (match i.RecordingSeconds with Some r -> sprintf "padded or cut to %s" (secondsText r) | None -> "kept whole")
              "windows", windows
              "test speeds", TestSpeeds.format i.TestSpeeds ]
        | None -> [ "input", sprintf "not readable here: %s" (defaultArg s.InputProblem "") ]
    [ "input shape", shapeText s.InputShape ] @ prepared @ [ "classes", sprintf "%d: %s" s.Labels.Length (String.concat ", " s.Labels) ]

/// The totals' lines as (name, value) pairs.
let private totalRows (s: ModelSummary) : (string * string) list =
    [ "Total params", count (s.Trainable + s.NonTrainable)
      "Trainable params", count s.Trainable
      "Non-trainable params", count s.NonTrainable
      "Model file", sprintf "%s bytes (%s, Hybrid %s%s)" (count s.FileBytes) s.Path s.LibraryVersion (match s.Recipe with Some r -> ", recipe " + r | None -> "") ]

/// One row per layer: "name (Kind)", output shape, parameters, trainable parameters.
let private layerRows (s: ModelSummary) : string list list =
    [ for l in s.Layers -> [ sprintf "%s (%s)" l.Name l.Kind; shapeText l.OutputShape; count (l.Trainable + l.NonTrainable); count l.Trainable ] ]

let private headers = [ "Layer (type)"; "Output Shape"; "Param #"; "Trainable" ]

/// The plain-text summary: a fixed-width table of the layers, then the totals and the input, one `name: value` each.
let private writeText (out: TextWriter) (s: ModelSummary) =
    let rows = headers :: layerRows s
    let widths = [ for c in 0 .. headers.Length - 1 -> rows |> List.map (fun r -> r.[c].Length) |> List.max ]
    let line (cells: string list) =
        List.zip cells widths
        |> List.mapi (fun c (cell, w) -> if c < 2 then cell.PadRight w else cell.PadLeft w)
        |> String.concat "   "
    let rule = String('-', (List.sum widths) + 3 * (widths.Length - 1))
    out.WriteLine(line headers)
    out.WriteLine rule
    for r in List.tail rows do out.WriteLine(line r)
    out.WriteLine rule
    let pairs = totalRows s @ inputRows s
    let width = pairs |> List.map (fun (n, _) -> n.Length) |> List.max
    for name, value in pairs do out.WriteLine(sprintf "%s %s" ((name + ":").PadRight(width + 1)) value)

/// The summary as one JSON object.
let json (s: ModelSummary) =
    {| path = s.Path; file_bytes = s.FileBytes; library_version = s.LibraryVersion; recipe = Option.toObj s.Recipe
       input_shape = s.InputShape
       layers =
        [ for l in s.Layers ->
            {| index = l.Index; name = l.Name; kind = l.Kind; output_shape = l.OutputShape; parameters = l.Trainable + l.NonTrainable
               trainable = l.Trainable; non_trainable = l.NonTrainable |} ]
       total_parameters = s.Trainable + s.NonTrainable; trainable_parameters = s.Trainable; non_trainable_parameters = s.NonTrainable
       classes = s.Labels; schema_fingerprint = s.SchemaFingerprint
       input =
        s.Input
        |> Option.map (fun i ->
            {| sample_rate = i.SampleRate; clip_samples = i.ClipSamples; clip_seconds = float i.ClipSamples / float i.SampleRate
               features = i.Features; feature_parameters = i.FeatureParameters; feature_shape = i.FeatureShape
               per_utterance = i.PerUtterance; trim = i.Trim; loudness = Option.toNullable i.Loudness
               recording_seconds = Option.toNullable i.RecordingSeconds
               segment = i.Segment |> Option.map (fun (w, h) -> {| window_seconds = w; hop_seconds = h |}) |> Option.toObj
               test_speeds = [ for f, w in i.TestSpeeds -> {| factor = f; weight = w |} ] |})
        |> Option.toObj
       input_problem = Option.toObj s.InputProblem
       settings = s.Settings |}

/// Runs the command. Exit codes: 0 done; 1 the model file is missing, damaged or not a model; 2 bad options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    Command.run<SummaryArgs> "summary" out error argv (fun args ->
        OptionRules.enforce args table
        let s = ModelSummary.ofFile (args.GetResult Model)
        if args.Contains Json then out.WriteLine(JsonSerializer.Serialize(json s))
        else
            match Terminal.consoleOf out with
            | Some console ->
                console.Write(Terminal.table None headers (layerRows s))
                console.Write(Terminal.grid (totalRows s @ inputRows s))
            | None -> writeText out s
        0)
