/// The strict command line: every option of every command has one entry in its command's table (a function over the
/// command's Argu union, so the compiler sees that no option lacks one), which states the values the option accepts
/// and the modes in which it is used. An option given with a value outside its domain, or in a mode that does not use
/// it, is refused with ArgumentException (exit code 2) naming the option and its valid range or mode, before any data
/// is read. Checks that need the data (--labels naming a class without recordings, fold numbers the dataset lacks) stay
/// with the library and come after the dataset is opened.
module Hybrid.Cli.OptionRules

open System
open System.Globalization
open Argu
open Hybrid.Features
open Hybrid.Features.Schemas

/// What one option given on the command line must satisfy.
type Check =
    /// The value lies in the option's domain: whether it does, the domain as the refusal states it (e.g. "an integer
    /// >= 1"), and the value given.
    | InDomain of ok: bool * domain: string * value: string
    /// The option is used only in one mode: whether the command line chose that mode, and the mode in words (e.g.
    /// "with --segment").
    | UsedOnly of ok: bool * mode: string

/// The invariant spelling of a number in messages.
let text (v: float) = v.ToString("R", CultureInfo.InvariantCulture)

/// An integer of at least `low`.
let atLeast (low: int) (v: int) = InDomain(v >= low, sprintf "an integer >= %d" low, string v)

/// An integer in low..high.
let within (low: int) (high: int) (v: int) = InDomain(v >= low && v <= high, sprintf "an integer in %d..%d" low high, string v)

/// A finite number above 0, in `unit` (e.g. " dB", " Hz"; "" for none).
let positive (unit: string) (v: float) = InDomain(v > 0.0 && Double.IsFinite v, sprintf "a finite number > 0%s, i.e. in (0, inf)" unit, text v)

/// A finite number of at least 0, in `unit`.
let nonNegative (unit: string) (v: float) = InDomain(v >= 0.0 && Double.IsFinite v, sprintf "a finite number >= 0%s, i.e. in [0, inf)" unit, text v)

/// A number strictly between 0 and 1.
let fraction (v: float) = InDomain(v > 0.0 && v < 1.0, "a number in (0, 1)", text v)

/// Seconds of audio: train's and ClipPlan's range (0, 3600).
let seconds (v: float) = InDomain(v > 0.0 && v < 3600.0, "a number of seconds in (0, 3600)", text v)

/// One of a fixed set of names (compared without case).
let oneOf (names: string seq) (v: string) =
    InDomain(names |> Seq.exists (fun n -> String.Equals(n, v.Trim(), StringComparison.OrdinalIgnoreCase)), "one of " + String.Join(", ", names), v)

/// An engine name of Engines.Names (auto, managed, cuda, opencl, ilgpu-cpu).
let engine (name: string) = oneOf Hybrid.Dsp.Engines.Names name

/// A thread count for `--threads`: 1..4 x the logical processors (Hybrid.Dsp.Parallelism.Limit).
let threads (v: int) = within 1 Hybrid.Dsp.Parallelism.Limit v

/// The option's command-line spelling (e.g. "--top-db"); a main command's placeholder otherwise.
let flagOf (parser: ArgumentParser<'Args>) (arg: 'Args) =
    let info = parser.GetArgumentCaseInfo arg
    match info.CommandLineNames.Value with
    | name :: _ -> name
    | [] -> info.Name.Value

/// The message of a failed check, e.g. "--top-db must be a finite number > 0 dB, i.e. in (0, inf), was -1".
let refusal (flag: string) (check: Check) =
    match check with
    | InDomain (false, domain, value) -> Some(sprintf "%s must be %s, was %s" flag domain value)
    | UsedOnly (false, mode) -> Some(sprintf "%s applies only %s; it is refused rather than ignored" flag mode)
    | _ -> None

/// Sets the process-wide thread setting (Hybrid.Dsp.Parallelism.MaxThreads) to `--threads` when given, until the
/// returned scope is disposed (the previous value then comes back, so one command run in a test does not change the
/// next); validates the count first (ArgumentException naming --threads, exit code 2).
let threadScope (given: int option) : System.IDisposable =
    let previous = Hybrid.Dsp.Parallelism.MaxThreads
    match given with
    | Some n ->
        match refusal "--threads" (threads n) with
        | Some message -> raise (ArgumentException message)
        | None -> Hybrid.Dsp.Parallelism.MaxThreads <- n
    | None -> ()
    { new System.IDisposable with
        member _.Dispose() = Hybrid.Dsp.Parallelism.MaxThreads <- previous }

/// Checks every option given against the command's table, in command-line order; raises ArgumentException (no
/// parameter name: the message names the option) at the first refusal.
let enforce (args: ParseResults<'Args>) (table: 'Args -> Check list) =
    for arg in args.GetAllResults() do
        for check in table arg do
            match refusal (flagOf args.Parser arg) check with
            | Some message -> raise (ArgumentException message)
            | None -> ()

/// `UsedOnly` for a feature option: used when the schema reads its librosa parameter (FeatureSchemaInfo.Reads, the
/// schema's own account of what each member's computation reads).
let usedBySchema (schema: FeatureSchemaInfo) (librosaName: string) =
    let kinds = schema.Members |> Seq.map (fun m -> string m.Kind) |> Seq.distinct |> String.concat ", "
    UsedOnly(schema.Reads librosaName, sprintf "to schemas with a member that reads %s (schema '%s' has %s)" librosaName schema.Name kinds)

/// A value the library parses (a split, an augmentation list, test speeds): in the domain when `parse` accepts it;
/// `domain` states the syntax and ranges for the refusal, which adds the parser's own reason after the value.
let parsed (domain: string) (parse: string -> 'T) (value: string) =
    let reason =
        try
            parse value |> ignore
            None
        with
        | :? ArgumentException as e -> Some(match e.ParamName with null -> e.Message | name -> e.Message.Replace(sprintf " (Parameter '%s')" name, ""))
        | :? DatasetException as e -> Some e.Message
    match reason with
    | None -> InDomain(true, domain, value)
    | Some why -> InDomain(false, domain, sprintf "%s (%s)" value why)

/// --top-db: "none" (keep everything) or a number of dB; the option table refuses anything else first.
let topDbOf (value: string) =
    if value.Trim().ToLowerInvariant() = "none" then None
    else Some(Double.Parse(value, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture))

/// --top-db's domain: a finite number of dB above 0 (schemas refuse top_db <= 0 as HYB008), or none.
let topDbDomain (value: string) =
    let ok =
        value.Trim().ToLowerInvariant() = "none"
        || (match Double.TryParse(value, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
            | true, v -> v > 0.0 && Double.IsFinite v
            | _ -> false)
    InDomain(ok, "a finite number of dB > 0, i.e. in (0, inf), or none", value)

/// --pcen's domain: none, true (librosa.pcen's defaults) or TIME_CONSTANT:GAIN:BIAS:POWER with a time constant > 0 s
/// and the others >= 0 (FeatureParameters.PcenOf, checked again by the schema).
let pcenDomain (value: string) =
    let ok =
        try
            match FeatureParameters.PcenOf value with
            | null -> true
            | c -> c.TimeConstant > 0.0 && Double.IsFinite c.TimeConstant && c.Gain >= 0.0 && Double.IsFinite c.Gain
                   && c.Bias >= 0.0 && Double.IsFinite c.Bias && c.Power >= 0.0 && Double.IsFinite c.Power
        with :? FormatException -> false
    InDomain(ok, "none, true (librosa.pcen's defaults: 0.4:0.98:2:0.5) or TIME_CONSTANT:GAIN:BIAS:POWER with a time constant > 0 s and gain, bias and power >= 0", value)

/// --pcen as the feature parameter text FeatureParameters.With reads ("none", "true" or the four numbers).
let pcenText (value: string) = FeatureParameters.PcenText(FeatureParameters.PcenOf value)

/// A split specification (Split.parse) that `accept` allows, `domain` naming the accepted forms.
let split (domain: string) (accept: SplitSpec -> bool) (value: string) =
    match parsed domain Split.parse value with
    | InDomain (true, _, _) -> InDomain(accept (Split.parse value), domain, value)
    | refused -> refused
