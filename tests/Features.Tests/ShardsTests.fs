module Hybrid.FeaturesTests.ShardsTests

open System
open System.IO
open Expecto
open Hybrid.Features
open Hybrid.FeaturesTests.DatasetFixtures

/// An extractor whose row for a clip is (sum, max, first sample, the clip's length): easy to check by hand.
let private summary : Pipeline.Extractor =
    { Name = "summary"; Fingerprint = "summary-fingerprint-0123456789abcdef"; Length = 4; Shape = [| 2; 2 |]; SampleRate = 8000
      ClipSamples = 0
      ExtractBatch =
        fun clips n ->
            let samples = clips.Length / n
            Array.init (n * 4) (fun k ->
                let clip = Array.sub clips ((k / 4) * samples) samples
                match k % 4 with
                | 0 -> Array.sum clip
                | 1 -> Array.max clip
                | 2 -> clip.[0]
                | _ -> float32 samples) }

/// "Recordings": files whose first byte selects the clip (so a rewritten file gives another row).
let private recordings (temp: TempFolder) (count: int) =
    [| for i in 0 .. count - 1 ->
        let key = sprintf "class%d/rec%02d.bin" (i % 2) i
        let path = temp.Combine("data/" + key)
        Directory.CreateDirectory(nonNull (Path.GetDirectoryName path)) |> ignore
        File.WriteAllBytes(path, [| byte i; 7uy |])
        Shards.source path key (sprintf "class%d" (i % 2)) |]

/// Clips of a recording: `windows` windows of 3 + first byte samples each.
let private clipsOf (windows: int) (s: Shards.Source) =
    let seed = int (File.ReadAllBytes s.Path).[0]
    Array.init windows (fun w -> Array.init (3 + seed) (fun t -> float32 ((seed * 7 + t * 3 + w) % 11) + 0.1f * float32 w))

let private expectedRow (clip: float32[]) = [| Array.sum clip; Array.max clip; clip.[0]; float32 clip.Length |]

[<Tests>]
let tests =
    testList "Shards" [
        test "plan orders recordings by key, cuts them into shards of N and names each shard by its members" {
            use temp = new TempFolder()
            let sources = recordings temp 7
            let plans = Shards.plan summary.Fingerprint "v" 3 (Array.rev sources)
            Expect.equal (plans |> Array.map (fun p -> p.Sources.Length)) [| 3; 3; 1 |] "shards of 3, the last smaller"
            Expect.equal (plans |> Array.collect (fun p -> p.Sources |> Array.map (fun s -> s.Key))) (sources |> Array.map (fun s -> s.Key) |> Array.sort) "members by key"
            Expect.equal (Shards.plan summary.Fingerprint "v" 3 sources) plans "the same plan whatever the order given"
            let other = Shards.plan summary.Fingerprint "other" 3 sources
            Expect.notEqual other.[0].Id plans.[0].Id "another variant, another id"
            Expect.notEqual (Shards.pathOf "c" other.[0]) (Shards.pathOf "c" plans.[0]) "and another file"
            Expect.throwsT<ArgumentException> (fun () -> Shards.plan "f" "v" 0 sources |> ignore) "shard size 0 refused"
            Expect.throwsT<ArgumentException> (fun () -> Shards.plan "f" "v" 2 [| sources.[0]; sources.[0] |] |> ignore) "a repeated recording refused"
        }

        test "a shard written and read back gives every column bit for bit" {
            use temp = new TempFolder()
            let sources = recordings temp 3
            let plan = (Shards.plan summary.Fingerprint "windows=2" 8 sources).[0]
            // Values with every bit pattern class that matters: negative zero, subnormals, NaN payloads, extremes.
            let special = [| -0.0f; 1.4e-45f; -3.4028235e38f; BitConverter.Int32BitsToSingle 0x7fc12345; Single.PositiveInfinity; 1.0f / 3.0f |]
            let values = Array.init (6 * 4) (fun k -> if k < special.Length then special.[k] else float32 k * 0.37f - 2.0f)
            let rows: Shards.ShardRows = { Sources = [| 0; 0; 1; 1; 2; 2 |]; Windows = [| 0; 1; 0; 1; 0; 1 |]; Values = values }
            let path = Shards.write (temp.Combine "cache") plan summary.Name summary.Shape rows
            let shard = Shards.readPlanned (temp.Combine "cache") plan
            Expect.equal path (Shards.pathOf (temp.Combine "cache") plan) "stored under the planned name"
            Expect.equal (shard.Values |> Array.map BitConverter.SingleToInt32Bits) (values |> Array.map BitConverter.SingleToInt32Bits) "values bit for bit"
            Expect.equal shard.Keys (rows.Sources |> Array.map (fun i -> plan.Sources.[i].Key)) "relative paths"
            Expect.equal shard.Sizes (rows.Sources |> Array.map (fun i -> plan.Sources.[i].Size)) "sizes"
            Expect.equal shard.Modified (rows.Sources |> Array.map (fun i -> plan.Sources.[i].Modified)) "modification times"
            Expect.equal shard.Labels (rows.Sources |> Array.map (fun i -> plan.Sources.[i].Label)) "labels"
            Expect.equal shard.Windows rows.Windows "window indexes"
            Expect.equal (shard.Fingerprint, shard.Variant, shard.Id, shard.Index, shard.Shape, shard.RowLength, shard.Extractor)
                         (summary.Fingerprint, "windows=2", plan.Id, 0, [| 2; 2 |], 4, "summary") "metadata"
            Expect.equal (Directory.GetFiles(Shards.folderOf (temp.Combine "cache") summary.Fingerprint)) [| path |] "one file, no temporary left"
        }

        test "a write that fails before its rename leaves no file, partial or temporary" {
            use temp = new TempFolder()
            let plan = (Shards.plan summary.Fingerprint "v" 8 (recordings temp 2)).[0]
            let rows: Shards.ShardRows = { Sources = [| 0; 1 |]; Windows = [| 0; 0 |]; Values = Array.init 8 float32 }
            let mutable sawTemporary = false
            let fail (tempFile: string) =
                sawTemporary <- File.Exists tempFile && FileInfo(tempFile).Length > 0L
                raise (IOException "disk full")
            Expect.throwsT<IOException> (fun () -> Shards.writeWith fail (temp.Combine "cache") plan summary.Name summary.Shape rows |> ignore) "the failure is raised"
            Expect.isTrue sawTemporary "the shard was complete under its temporary name"
            Expect.isEmpty (Directory.GetFiles(temp.Combine "cache", "*", SearchOption.AllDirectories)) "nothing left behind"
            Expect.equal (Shards.check (temp.Combine "cache") [| plan |]).Missing [| plan |] "the shard is still missing"
            Expect.throwsT<ArgumentException> (fun () -> Shards.write (temp.Combine "cache") plan summary.Name summary.Shape { rows with Values = Array.zeroCreate 7 } |> ignore) "rows of the wrong length refused"
            Expect.isEmpty (Directory.GetFiles(temp.Combine "cache", "*", SearchOption.AllDirectories)) "still nothing"
        }

        test "ensure computes missing shards once; a changed recording makes its shard stale and only that shard is recomputed" {
            use temp = new TempFolder()
            let cache = temp.Combine "cache"
            let sources = recordings temp 5
            let calls = ref 0
            let clips (s: Shards.Source) =
                Threading.Interlocked.Increment calls |> ignore
                clipsOf 2 s
            let plans = Shards.plan summary.Fingerprint "windows=2" 2 sources
            let found, written = Shards.ensure cache plans summary clips 2 Progress.silent
            Expect.equal (found.Length, written.Length, calls.Value) (0, 3, 5) "every shard computed, each recording loaded once"
            let rowsOf (plans: Shards.ShardPlan[]) = plans |> Array.map (Shards.readPlanned cache)
            for shard in rowsOf plans do
                for r in 0 .. shard.Rows - 1 do
                    let source = sources |> Array.find (fun s -> s.Key = shard.Keys.[r])
                    Expect.equal shard.Values.[r * 4 .. r * 4 + 3] (expectedRow (clipsOf 2 source).[shard.Windows.[r]]) "each window's row"
            Expect.equal (rowsOf plans |> Array.sumBy (fun s -> s.Rows)) 10 "two windows per recording"
            let again, none = Shards.ensure cache plans summary clips 2 Progress.silent
            Expect.equal (again.Length, none.Length, calls.Value) (3, 0, 5) "a second run reads every shard and loads nothing"
            // Same size, new content and modification time (set explicitly: the clock may not have ticked).
            File.WriteAllBytes(sources.[2].Path, [| 9uy; 7uy |])
            File.SetLastWriteTimeUtc(sources.[2].Path, DateTime.UtcNow.AddMinutes 5.0)
            let changed = sources |> Array.map (fun s -> Shards.source s.Path s.Key s.Label)
            let replanned = Shards.plan summary.Fingerprint "windows=2" 2 changed
            let status = Shards.check cache replanned
            let holder = replanned |> Array.findIndex (fun p -> p.Sources |> Array.exists (fun s -> s.Key = sources.[2].Key))
            Expect.equal (status.Missing |> Array.map (fun p -> p.Index)) [| holder |] "only the changed recording's shard is missing"
            Expect.equal status.Stale [| Shards.pathOf cache plans.[holder] |] "its old file is stale"
            let _, recomputed = Shards.ensure cache replanned summary clips 2 Progress.silent
            Expect.equal (recomputed.Length, calls.Value) (1, 7) "one shard (two recordings) recomputed"
            Expect.equal (Shards.prune cache replanned) status.Stale "prune deletes the stale file"
            Expect.isEmpty (Shards.check cache replanned).Stale "and it is gone"
            let shard = Shards.readPlanned cache replanned.[holder]
            let r = shard.Keys |> Array.findIndex (fun k -> k = sources.[2].Key)
            Expect.equal shard.Values.[r * 4 .. r * 4 + 3] (expectedRow (clipsOf 2 changed.[2]).[0]) "the new row"
            Expect.equal (Shards.list (Shards.folderOf cache summary.Fingerprint)).Length 3 "three valid shards listed"
        }

        test "a readable shard whose rows no longer match its checksum is refused, and readOrRebuild builds it again" {
            use temp = new TempFolder()
            let cache = temp.Combine "cache"
            let sources = recordings temp 2
            let plan = (Shards.plan summary.Fingerprint "v" 8 sources).[0]
            let rows (v: float32) : Shards.ShardRows = { Sources = [| 0; 1 |]; Windows = [| 0; 0 |]; Values = Array.init 8 (fun k -> if k = 5 then v else float32 k) }
            let path = Shards.write cache plan summary.Name summary.Shape (rows 5.0f)
            let original = File.ReadAllBytes path
            let find (bytes: byte[]) (text: string) =
                let needle = Text.Encoding.ASCII.GetBytes text
                seq { 0 .. bytes.Length - needle.Length } |> Seq.find (fun i -> Span<byte>(bytes, i, needle.Length).SequenceEqual(ReadOnlySpan needle))
            // The same shard with one value changed (5 -> 6), its metadata then given the original rows' checksum: a
            // well-formed Parquet file whose rows are not the ones it records.
            Shards.write cache plan summary.Name summary.Shape (rows 6.0f) |> ignore
            let damaged = File.ReadAllBytes path
            let marker = "hybrid.shard.checksum"
            let at (bytes: byte[]) = find bytes marker
            let hexAt (bytes: byte[]) =
                seq { at bytes + marker.Length .. bytes.Length - 64 } |> Seq.find (fun i -> Seq.forall (fun j -> Uri.IsHexDigit(char bytes.[i + j])) [ 0 .. 63 ])
            let originalHex = original.[hexAt original .. hexAt original + 63]
            Array.blit originalHex 0 damaged (hexAt damaged) 64
            File.WriteAllBytes(path, damaged)
            let e = Expect.throwsC (fun () -> Shards.readPlanned cache plan |> ignore) id
            Expect.isTrue (e :? Shards.ShardException) "ShardException"
            Expect.stringContains e.Message "checksum mismatch" "the checksum names the damage"
            Expect.stringContains e.Message path "and the file"
            let warnings = Collections.Generic.List<string>()
            let shard = Shards.readOrRebuild cache plan summary (clipsOf 1) warnings.Add
            Expect.equal warnings.Count 1 "one warning"
            Expect.stringContains warnings.[0] "rebuilding the shard" "says it rebuilds"
            Expect.equal shard.Values (Array.concat [ for s in plan.Sources -> expectedRow (clipsOf 1 s).[0] ]) "the rebuilt rows are the extractor's"
        }

        test "a corrupt, truncated or foreign shard is refused with an error naming the file" {
            use temp = new TempFolder()
            let cache = temp.Combine "cache"
            let plans = Shards.plan summary.Fingerprint "v" 8 (recordings temp 2)
            Shards.ensure cache plans summary (clipsOf 1) 2 Progress.silent |> ignore
            let path = Shards.pathOf cache plans.[0]
            let bytes = File.ReadAllBytes path
            let refused (what: string) =
                let e =
                    try
                        Shards.readPlanned cache plans.[0] |> ignore
                        failtestf "%s: expected ShardException, the shard was read" what
                    with :? Shards.ShardException as e -> e
                Expect.stringContains e.Message path (sprintf "%s: the message names the file" what)
                Expect.equal e.Path path (sprintf "%s: the exception carries the file" what)
                e
            File.WriteAllBytes(path, bytes.[.. bytes.Length / 2])
            refused "truncated" |> ignore
            let flipped = Array.copy bytes
            for i in 8 .. 40 do flipped.[i] <- flipped.[i] ^^^ 0xA5uy
            File.WriteAllBytes(path, flipped)
            refused "corrupt" |> ignore
            File.WriteAllText(path, "not parquet at all")
            refused "not Parquet" |> ignore
            // A valid Parquet file that is not a shard (an export table).
            Export.writeParquet path { Columns = [| "a" |]; Files = [| "x.wav" |]; Labels = [| "l" |]; Values = [| 1.0f |] }
            Expect.stringContains (refused "foreign").Message "not a feature shard" "says it is not a shard"
            Expect.throwsT<Shards.ShardException> (fun () -> Shards.list (Shards.folderOf cache summary.Fingerprint) |> ignore) "listing the folder refuses it too"
        }
    ]
