/// `features --cluster` against `features` on one machine, through the command itself and a loopback silo started by
/// SiloHost: the same output file, the same skipped and warning report and exit code, for a declared schema with bad
/// files among good ones and for a run-time variant of a schema.
module Hybrid.CliTests.ClusterFeaturesCommandTests

open System
open System.IO
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas
open Hybrid.ClusterTests

/// A folder-per-class dataset of 8 one-second noise recordings at 8 kHz, one of them truncated (its data chunk cut in
/// half: used with a warning), and one .wav that is not audio (skipped).
let private badDataset () =
    let root = Path.Combine(Path.GetTempPath(), "hybrid-cli-cluster-" + Guid.NewGuid().ToString("N"))
    let rng = Random(31)
    for i in 0 .. 7 do
        let dir = Path.Combine(root, sprintf "class%d" (i % 2))
        Directory.CreateDirectory dir |> ignore
        let samples = Array.init (7000 + 150 * i) (fun _ -> float32 (rng.NextDouble() * 0.2 - 0.1))
        Wav.write (Path.Combine(dir, sprintf "rec%d.wav" i)) SampleFormat.Pcm16 { SampleRate = 8000; Samples = [| samples |] }
    let whole = File.ReadAllBytes(Path.Combine(root, "class0", "rec0.wav"))
    File.WriteAllBytes(Path.Combine(root, "class0", "truncated.wav"), whole[.. whole.Length / 2])
    File.WriteAllText(Path.Combine(root, "class1", "notes.wav"), "not audio at all")
    root

let private run (args: string list) =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = Hybrid.Cli.FeaturesCommand.run out err (Array.ofList args)
    code, out.ToString(), err.ToString()

/// The report lines of a run: what was skipped and what was used with a warning.
let private report (err: string) =
    err.Split('\n') |> Array.map (fun l -> l.TrimEnd()) |> Array.filter (fun l -> l.StartsWith "features: skipped" || l.StartsWith "features: warning")

/// Runs `features` with `extra` on one machine and on the silo at `gateway` into fresh caches and checks that the two
/// agree: exit code 0 both, the same report, byte-identical CSV output. Returns the cluster run's cache folder.
let private localEqualsCluster (root: string) (gateway: string) (extra: string list) =
    let common = [ "--data"; root; "--schema"; "logmel-fsdd"; "--device"; "managed" ] @ extra
    let local = root + "-local.csv"
    let cluster = root + "-cluster.csv"
    let clusterCache = root + "-cluster-cache"
    let lc, lo, le = run (common @ [ "--cache"; root + "-local-cache"; "--out"; local ])
    let cc, co, ce = run (common @ [ "--cache"; clusterCache; "--out"; cluster; "--cluster"; gateway ])
    Expect.equal lc 0 (sprintf "the local run succeeds:\n%s\n%s" lo le)
    Expect.equal cc 0 (sprintf "the cluster run succeeds like the local one:\n%s\n%s" co ce)
    Expect.equal (report ce) (report le) "the same skipped and warning report"
    Expect.equal (File.ReadAllBytes cluster) (File.ReadAllBytes local) "byte-identical output"
    Expect.stringContains co "written on the cluster" "the shards were extracted on the cluster"
    clusterCache

let private cleanUp (root: string) =
    for d in [ root; root + "-local-cache"; root + "-cluster-cache" ] do
        if Directory.Exists d then Directory.Delete(d, true)
    for f in [ root + "-local.csv"; root + "-cluster.csv" ] do
        File.Delete f

[<Tests>]
let tests =
    testSequencedGroup "orleans" << slow <| testList "FeaturesCommand" [
        testCase "--cluster with a truncated and a non-audio .wav among good files: the local run's output, skipped report and exit code" (fun () ->
            let root = badDataset ()
            try
                TestClusters.withSilo None (fun gateway ->
                    let _, _, le = run [ "--data"; root; "--schema"; "logmel-fsdd"; "--device"; "managed"; "--out"; root + "-probe.csv" ]
                    File.Delete(root + "-probe.csv")
                    let lines = report le
                    Expect.equal lines.Length 2 (sprintf "the local scan reports two files:\n%s" le)
                    Expect.stringContains lines[0] "notes.wav" "the non-audio file is skipped"
                    Expect.stringContains lines[1] "truncated.wav" "the truncated file is used with a warning"
                    localEqualsCluster root gateway [] |> ignore)
            finally
                cleanUp root)

        testCase "--cluster with a run-time variant (--n-mels 24 --n-fft 512): the local output, shards keyed by the variant's fingerprint" (fun () ->
            let root = badDataset ()
            try
                TestClusters.withSilo None (fun gateway ->
                    let cache = localEqualsCluster root gateway [ "--n-mels"; "24"; "--n-fft"; "512" ]
                    let declared = Schemas.ByName "logmel-fsdd"
                    let variant = Extraction.variant declared { Extraction.noOverrides with NMels = Some 24; NFft = Some 512 }
                    Expect.notEqual variant.Fingerprint declared.Fingerprint "the variant has its own fingerprint"
                    let shards = Shards.list (Shards.folderOf cache variant.Fingerprint)
                    Expect.equal shards.Length 1 "the cluster wrote the variant's shard"
                    Expect.equal shards[0].Shape [| 24; variant.Shape[1] |] "24 mel bands per row"
                    Expect.equal shards[0].Variant Extraction.WholeRecordings "whole recordings, as features --cache stores them"
                    Expect.isFalse (Directory.Exists(Shards.folderOf cache declared.Fingerprint)) "nothing under the declaration's fingerprint")
            finally
                cleanUp root)
    ]
