/// Where the tests find shared data, and how a test that needs absent data is reported.
module Hybrid.TestSupport.TestData

open System
open System.IO
open Expecto

/// Environment variable naming the FSDD folder (the one holding recordings/).
[<Literal>]
let FsddVariable = "HYBRID_FSDD"

/// Environment variable that, set to 1 or true, turns "data absent, test skipped" into a failure.
[<Literal>]
let RequireDataVariable = "HYBRID_REQUIRE_DATA"

/// Environment variable naming the librosa reference folder.
[<Literal>]
let ReferenceVariable = "HYBRID_LIBROSA_REFERENCE"

/// Environment variable naming the kymatio 0.4 scattering reference folder.
[<Literal>]
let KymatioReferenceVariable = "HYBRID_KYMATIO_REFERENCE"

let private repoRoot =
    lazy (
        let rec up (dir: DirectoryInfo | null) =
            match dir with
            | null -> None
            | d when File.Exists(Path.Combine(d.FullName, "Hybrid.sln")) -> Some d.FullName
            | d -> up d.Parent
        up (DirectoryInfo AppContext.BaseDirectory))

/// True when missing data must fail the test run instead of skipping.
let requireData () =
    match Environment.GetEnvironmentVariable RequireDataVariable with
    | null -> false
    | v -> v = "1" || v.Equals("true", StringComparison.OrdinalIgnoreCase)

let private locate (variable: string) (besideRepo: string) =
    match Environment.GetEnvironmentVariable variable with
    | null | "" ->
        repoRoot.Value
        |> Option.map (fun root -> Path.GetFullPath(Path.Combine(root, "..", besideRepo)))
        |> Option.filter Directory.Exists
    | path -> if Directory.Exists path then Some(Path.GetFullPath path) else None

/// The FSDD folder from HYBRID_FSDD, else ../shared/data/fsdd beside the repository, if it exists.
let fsddFolder () = locate FsddVariable (Path.Combine("shared", "data", "fsdd"))

/// The librosa 0.10.2 reference folder from HYBRID_LIBROSA_REFERENCE, else ../shared/reference/librosa-0.10.2.
let referenceFolder () = locate ReferenceVariable (Path.Combine("shared", "reference", "librosa-0.10.2"))

/// The kymatio 0.4 reference folder from HYBRID_KYMATIO_REFERENCE, else ../shared/reference/kymatio-0.4.
let kymatioReferenceFolder () = locate KymatioReferenceVariable (Path.Combine("shared", "reference", "kymatio-0.4"))

/// The repository root (the folder holding Hybrid.sln above the test binaries), if found.
let repositoryRoot () = repoRoot.Value

let private missing what variable =
    let message = sprintf "%s not found (set %s)" what variable
    if requireData () then failtestf "%s and %s is set" message RequireDataVariable
    else skiptest message

/// A test that receives the FSDD folder, skipped (or failed under HYBRID_REQUIRE_DATA) when it is absent.
let testWithFsdd name (body: string -> unit) =
    testCase name (fun () ->
        match fsddFolder () with
        | Some dir -> body dir
        | None -> missing "FSDD folder" FsddVariable)

/// A test that receives the librosa reference folder, skipped (or failed) when it is absent.
let testWithReference name (body: string -> unit) =
    testCase name (fun () ->
        match referenceFolder () with
        | Some dir -> body dir
        | None -> missing "librosa reference folder" ReferenceVariable)

/// A test that receives the kymatio reference folder, skipped (or failed) when it is absent.
let testWithKymatio name (body: string -> unit) =
    testCase name (fun () ->
        match kymatioReferenceFolder () with
        | Some dir -> body dir
        | None -> missing "kymatio reference folder" KymatioReferenceVariable)
/// librosa 0.10.2's chroma filter banks and chroma_stft results, made by reference/make_chroma_reference.py
/// (test material; the repository's tests/Dsp.Kernels.Tests/reference folder).
let chromaReference =
    lazy (
        let root =
            match repositoryRoot () with
            | Some r -> r
            | None -> failwith "repository root (Hybrid.sln) not found above the test binaries"
        System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "tests", "Dsp.Kernels.Tests", "reference", "chroma-librosa-0.10.2.json"))).RootElement)

/// The 30 s harmonic test signal of make_chroma_reference.py at 22,050 Hz: twelve three-note chords of four
/// harmonics each (amplitudes 0.3/h), 2.5 s apiece, tuned 0.23 semitone above A440; the same formula in float64,
/// rounded to float32.
let harmonicSignal =
    lazy (
        let r = chromaReference.Value.GetProperty "signal"
        let sr = r.GetProperty("sr").GetInt32()
        let seconds = r.GetProperty("seconds").GetInt32()
        let detune = r.GetProperty("detune").GetDouble()
        let chords = [| for c in r.GetProperty("chords").EnumerateArray() -> [| for m in c.EnumerateArray() -> m.GetInt32() |] |]
        let y = Array.zeroCreate<float> (sr * seconds)
        let seg = sr * seconds / chords.Length
        chords
        |> Array.iteri (fun i chord ->
            for m in chord do
                let f = 440.0 * 2.0 ** ((float m + detune) / 12.0)
                for h in 1..4 do
                    for n in i * seg .. (i + 1) * seg - 1 do
                        y.[n] <- y.[n] + (0.3 / float h) * sin (2.0 * Math.PI * f * float h * float n / float sr))
        sr, Array.map float32 y)
