/// `hybrid bench`'s rule for runs slowed by other processes on the same cores.
module Hybrid.CliTests.BenchTests

open System
open Expecto
open Hybrid.Cli

[<Tests>]
let tests =
    testList "Bench" [
        test "cpuShare is the CPU time over the threads' wall time" {
            Expect.equal (Bench.cpuShare 100.0 150.0 2) (Some 0.75) "150 ms of CPU in 100 ms on 2 threads"
            Expect.equal (Bench.cpuShare 0.0 10.0 2) None "no wall time"
            Expect.equal (Bench.cpuShare 100.0 10.0 0) None "no threads"
        }

        test "contentionWarning warns below 60% of the threads' time and names the workload, both times and the share" {
            Expect.isNone (Bench.contentionWarning "w1-logmel" "managed" 100.0 190.0 2) "95%: a machine to itself"
            Expect.isNone (Bench.contentionWarning "w1-logmel" "managed" 100.0 120.0 2) "exactly 60%: no warning"
            match Bench.contentionWarning "w1-logmel" "managed" 1000.0 800.0 2 with
            | Some text ->
                for part in [ "w1-logmel on managed"; "1000.0 ms wall"; "800.0 ms CPU over 2 threads"; "40% of their time"; "shared with other processes" ] do
                    Expect.stringContains text part "the warning"
            | None -> failtest "expected a warning at 40%"
            Expect.isSome (Bench.contentionWarning "train-cnn2d" "managed" 100.0 50.0 1) "50% of one thread"
        }

        test "the table puts CPU time and its share beside the wall time and marks a warned share" {
            let row: Bench.Result =
                { engine = "managed"; device = "cpu"; workload = "w1-logmel"; median_ms = 1000.0; clips_per_s = Some 3000.0; gb_per_s = None
                  audio_s_per_s = None; gflops = None; samples_per_s = None; peak_mb = 100.0; host_to_device = None; device_to_host = None
                  synchronizations = None; cpu_ms = 800.0; threads = Some 2; spin_us = None; cpu_share = Some 0.4
                  warning = Bench.contentionWarning "w1-logmel" "managed" 1000.0 800.0 2; alloc_mb = 0.3; gc_count = 0
                  load_average = Some 1.0; speedup = None; round_speedups = None; efficiency = None }
            let lines = (Bench.table [ row ]).Split('\n') |> Array.map (fun l -> l.Trim())
            Expect.stringStarts lines.[0] "| engine | device | workload | median ms | CPU ms | CPU share |" "header"
            Expect.stringStarts lines.[2] "| managed | cpu | w1-logmel | 1000.0 | 800 | 40% (!) |" "row"
        }
    
        test "--warmup fixes the untimed runs: exactly N before the timed ones, and the default still warms up three times" {
            let counting () =
                let calls = ref 0
                let workload: BenchWorkloads.Workload =
                    { Name = "count"; Clips = 1; AudioSeconds = 0.0; Samples = 0; Flops = None; Bytes = None; ManagedOnly = false
                      Setup = fun _ -> (fun () -> calls.Value <- calls.Value + 1), ignore }
                calls, workload
            use engine = Hybrid.Dsp.Engines.Create "managed"
            for warmup, runs, expected in [ Some 0, 1, 1; Some 1, 2, 3; Some 4, 1, 5 ] do
                let calls, workload = counting ()
                Bench.measure engine runs warmup workload |> ignore
                Expect.equal calls.Value expected (sprintf "--warmup %A --runs %d" warmup runs)
            let calls, workload = counting ()
            Bench.measure engine 2 None workload |> ignore
            Expect.isGreaterThanOrEqual calls.Value 5 "default: at least 3 warm-up runs and the 2 timed ones"
        }

        test "parseThreadCounts takes one count or a comma-separated list within 1..4 x the processors" {
            let limit = Environment.ProcessorCount * 4
            Expect.equal (Bench.parseThreadCounts "2") (Some [ 2 ]) "one count"
            Expect.equal (Bench.parseThreadCounts "1, 2,4,2") (Some [ 1; 2; 4 ]) "a list, repeats dropped"
            Expect.equal (Bench.parseThreadCounts (string limit)) (Some [ limit ]) "the limit"
            for bad in [ "0"; "-1"; string (limit + 1); "two"; "1,,2"; "" ] do
                Expect.isNone (Bench.parseThreadCounts bad) (sprintf "'%s' refused" bad)
        }

        test "withScaling measures speed-up and efficiency against the fewest threads of the same engine and workload" {
            let row workload threads wall cpu : Bench.Result =
                { engine = "managed"; device = "cpu"; workload = workload; median_ms = wall; clips_per_s = None; gb_per_s = None
                  audio_s_per_s = None; gflops = None; samples_per_s = None; peak_mb = 1.0; host_to_device = None; device_to_host = None
                  synchronizations = None; cpu_ms = cpu; threads = Some threads; spin_us = None; cpu_share = Bench.cpuShare wall cpu threads
                  warning = None; alloc_mb = 0.0; gc_count = 0; load_average = Some 0.5; speedup = None; round_speedups = None; efficiency = None }
            let scaled = Bench.withScaling [ row "w1-logmel" 1 100.0 98.0; row "w1-logmel" 2 55.0 100.0; row "rfft-256" 2 40.0 78.0; row "rfft-256" 4 25.0 90.0 ]
            let at workload threads = scaled |> List.find (fun r -> r.workload = workload && r.threads = Some threads)
            Expect.floatClose Accuracy.high (at "w1-logmel" 2).speedup.Value (100.0 / 55.0) "speed-up against 1 thread"
            Expect.floatClose Accuracy.high (at "w1-logmel" 2).efficiency.Value (100.0 / 55.0 / 2.0) "efficiency = speed-up / threads"
            Expect.equal (at "w1-logmel" 1).speedup (Some 1.0) "the base row"
            Expect.floatClose Accuracy.high (at "rfft-256" 4).efficiency.Value (40.0 / 25.0 / 2.0) "against the fewest threads measured (2)"
            let lines = (Bench.scalingTable scaled).Split('\n') |> Array.map (fun l -> l.Trim())
            Expect.stringStarts lines.[0] "| engine | workload | threads | wall ms | CPU ms | CPU vs fewest | speed-up | efficiency | CPU share | load |" "header"
            Expect.contains lines "| managed | w1-logmel | 2 | 55.0 | 100.0 | 1.02 | 1.82x | 91% | 91% | 0.50 |" "a row"
            // Interleaved rounds: the speed-up is the median of the rounds' ratios, not the ratio of the medians.
            let paired =
                Bench.withScaling
                    [ { row "w2-logmel" 1 100.0 100.0 with round_speedups = Some [ 1.0; 1.0; 1.0 ] }
                      { row "w2-logmel" 2 80.0 150.0 with round_speedups = Some [ 1.6; 1.9; 1.7 ] } ]
            let two = paired |> List.find (fun r -> r.threads = Some 2)
            Expect.floatClose Accuracy.high two.speedup.Value 1.7 "median of 1.6, 1.9, 1.7 (the medians' ratio would be 1.25)"
            Expect.floatClose Accuracy.high two.efficiency.Value 0.85 "efficiency from it"
            Expect.equal (Bench.speedupText two) "1.70x (1.60-1.90)" "the rounds' range after the median"
            Expect.equal (Bench.speedupText (paired |> List.find (fun r -> r.threads = Some 1))) "1.00x" "no range when the rounds agree"
        }

        test "measureInterleaved: one setup, every count warmed up, timed runs alternating counts round by round, the engine's count restored" {
            let seen = Collections.Generic.List<int>()
            let setups = ref 0
            use engine = new Hybrid.Dsp.Managed.ManagedEngine(3)
            let workload: BenchWorkloads.Workload =
                { Name = "threads"; Clips = 1; AudioSeconds = 0.0; Samples = 0; Flops = None; Bytes = None; ManagedOnly = false
                  Setup =
                    fun e ->
                        setups.Value <- setups.Value + 1
                        (fun () ->
                            seen.Add (e :?> Hybrid.Dsp.Managed.ManagedEngine).MaxThreads
                            Threading.Thread.SpinWait 20000), ignore }
            let processWide = Hybrid.Dsp.Parallelism.MaxThreads
            let rows = Bench.measureInterleaved engine [ 1; 2 ] 3 (Some 1) workload |> Bench.withScaling
            Expect.equal setups.Value 1 "one setup for both counts"
            Expect.equal (List.ofSeq seen) [ 1; 2; 1; 2; 2; 1; 1; 2 ] "a warm-up run at each count, then rounds 1-2, 2-1, 1-2"
            Expect.equal engine.MaxThreads 3 "the engine's count restored"
            Expect.equal Hybrid.Dsp.Parallelism.MaxThreads processWide "the process-wide count restored"
            Expect.equal (rows |> List.map _.threads) [ Some 1; Some 2 ] "a row per count"
            Expect.stringContains rows.[1].device "2 threads" "the device names the row's count"
            Expect.equal rows.[0].round_speedups (Some [ 1.0; 1.0; 1.0 ]) "the fewest threads against themselves"
            Expect.equal rows.[1].round_speedups.Value.Length 3 "a ratio per round"
            Expect.all rows.[1].round_speedups.Value (fun r -> r > 0.0 && Double.IsFinite r) "finite ratios"
            Expect.isSome rows.[1].speedup "speed-up filled"
        }

        test "a profiled engine times every network operation as a named stage and passes results and errors through" {
            use inner = new Hybrid.Dsp.Managed.ManagedEngine(2)
            let stages = Collections.Generic.List<string * BenchStages.StageTime>()
            let profiled = new BenchStages.ProfiledEngine(inner, stages) :> Hybrid.Dsp.Engine
            let rng = Random 3
            let data n = Array.init n (fun _ -> float32 (rng.NextDouble() - 0.5))
            let a, b = inner.FromHost(data 12, 3, 4), inner.FromHost(data 20, 4, 5)
            let c, expected = profiled.Allocate(3, 5), inner.Allocate(3, 5)
            profiled.Nn.Gemm(a, false, b, false, c)
            inner.Nn.Gemm(a, false, b, false, expected)
            Expect.equal (c.ToArray()) (expected.ToArray()) "the inner engine's product"
            let mutable g = Hybrid.Dsp.ConvGeometry(2, 2, 5, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 5, 6)
            let x, w, bias = inner.FromHost(data 120, 2, 2, 5, 6), inner.FromHost(data 54, 3, 2, 3, 3), inner.FromHost(data 3, 3)
            let y, yExpected = profiled.Allocate(2, 3, 5, 6), inner.Allocate(2, 3, 5, 6)
            profiled.Nn.Conv2DForward(&g, x, w, bias, y)
            inner.Nn.Conv2DForward(&g, x, w, bias, yExpected)
            Expect.equal (y.ToArray()) (yExpected.ToArray()) "the inner engine's convolution"
            Expect.equal [ for name, t in stages -> name, t.Calls ] [ "gemm 3x5x4", 1; "conv2d_forward 2->3", 1 ] "one stage per operation, named with its sizes"
            Expect.all stages (fun (_, t) -> t.WallMs >= 0.0 && t.CpuMs >= 0.0) "times recorded"
            Expect.throwsT<ArgumentException> (fun () -> profiled.Nn.Gemm(a, false, a, false, c)) "the operation's own exception, not a reflection wrapper"
            let named (m: string) =
                match typeof<Hybrid.Dsp.INnOps>.GetMethod m with
                | null -> failtestf "no method %s" m
                | info -> BenchStages.nnStageName info [||]
            Expect.equal (named "BatchNormLeakyReluTrainingForward") "batch_norm_leaky_relu_training_forward" "words split at capitals"
            Expect.equal (named "Pool2DBackward") "pool2d_backward" "2D kept with its number"
            Expect.equal profiled.Nn (profiled.Nn) "one operations object"
            // The managed engine's optional fusion is presented through the wrapper, timed under its own name.
            match profiled.Nn with
            | :? Hybrid.Dsp.INnBatchNormPoolFusion as fusion ->
                let mutable pg = Hybrid.Dsp.PoolGeometry(2, 3, 4, 6, 2, 2, 2, 2, 0, 0, 2, 3)
                let c3 () = inner.FromHost(data 3, 3)
                let px, pooled = inner.FromHost(data 144, 2, 3, 4, 6), inner.Allocate(2, 3, 2, 3)
                fusion.BatchNormLeakyReluMaxPoolTrainingForward(&pg, px, c3 (), c3 (), 0.0f, 0.9f, 1e-3f, c3 (), c3 (), c3 (), c3 (), pooled)
                let name, _ = stages.[stages.Count - 1]
                Expect.equal name "batch_norm_leaky_relu_max_pool_training_forward 3 ch" "named with its channels"
            | _ -> failtest "the managed engine's batch norm and pooling fusion is hidden by the profiling wrapper"
        }

        test "stageScaling: each stage's speed-up and its time beyond perfect scaling, the largest first, stages at one count only left out" {
            let t wall : BenchStages.StageTime = { WallMs = wall; CpuMs = wall; WorkMs = 0.0; Calls = 1 }
            let lines =
                Bench.stageScaling "w" 1 2 2 [ "even", t 200.0; "slow", t 200.0; "gone", t 50.0 ] [ "even", t 100.0; "slow", t 160.0; "new", t 10.0 ]
            Expect.equal lines.Length 2 "the stages timed at both counts"
            Expect.stringContains lines.[0] "slow" "the one furthest from 2x first"
            Expect.stringContains lines.[0] "100.00 ->     80.00 ms wall a run,  1.25x,    30.00 ms a run beyond 2x" "per run: 200/2 -> 160/2, 30 ms beyond 50"
            Expect.stringContains lines.[1] " 2.00x,     0.00 ms a run beyond 2x" "perfect scaling loses nothing"
        }

        test "stageScaling splits a stage's loss into its threads' slowdown and its waiting when the work was measured" {
            let t wall work : BenchStages.StageTime = { WallMs = wall; CpuMs = wall; WorkMs = work; Calls = 1 }
            // 1 thread: 200 ms wall a run, 190 of them work; 2 threads: 130 ms wall, 220 ms work over both threads.
            let lines = Bench.stageScaling "w" 1 2 2 [ "conv", t 400.0 380.0 ] [ "conv", t 260.0 440.0 ]
            Expect.stringContains lines.[0] "200.00 ->    130.00 ms wall a run,  1.54x,    30.00 ms a run beyond 2x" "the wall figures as before"
            Expect.stringContains lines.[0] ", work 1.16x, 20.00 ms a run waiting" "440/380 as long; (260 - 440/2)/2 ms waiting"
            let unmeasured = Bench.stageScaling "w" 1 2 2 [ "conv", t 400.0 0.0 ] [ "conv", t 260.0 440.0 ]
            Expect.isFalse (unmeasured.[0].Contains "work") "no split without work at both counts"
        }

        // Sequenced: WorkTicks is process-wide, and other tests' loops would add to it while it is on.
        testSequenced <| test "a profiled managed engine counts its threads' work in parallel loops while Parallelism.MeasureWork is on" {
            use inner = new Hybrid.Dsp.Managed.ManagedEngine(2)
            let stages = Collections.Generic.List<string * BenchStages.StageTime>()
            let profiled = new BenchStages.ProfiledEngine(inner, stages) :> Hybrid.Dsp.Engine
            let rng = Random 5
            let data n = Array.init n (fun _ -> float32 (rng.NextDouble() - 0.5))
            let a, b = inner.FromHost(data (256 * 256), 256, 256), inner.FromHost(data (256 * 256), 256, 256)
            let c = profiled.Allocate(256, 256)
            let was = Hybrid.Dsp.Parallelism.MeasureWork
            Hybrid.Dsp.Parallelism.MeasureWork <- true
            try
                profiled.Nn.Gemm(a, false, b, false, c)
            finally
                Hybrid.Dsp.Parallelism.MeasureWork <- was
            let _, t = stages.[0]
            Expect.isGreaterThan t.WorkMs 0.0 "the product's 16.8M multiply-adds counted as work"
            // Work on 2 threads is at most both threads busy for the whole call (timer granularity aside).
            Expect.isLessThanOrEqual t.WorkMs (2.0 * t.WallMs + 1.0) "no more work than wall x threads"
        }

        test "--threads with a repeated count says each is measured once, and when that leaves one count, that no sweep runs" {
            use out = new IO.StringWriter()
            use error = new IO.StringWriter()
            let code = Bench.run out error [| "--threads"; "1,1"; "--device"; "managed"; "--workload"; "ceiling-compute"; "--runs"; "1"; "--warmup"; "0" |]
            Expect.equal code 0 "exit 0"
            Expect.stringContains (error.ToString()) "--threads 1,1 repeats a count; each is measured once (1): one count, so no thread sweep and no scaling table" "the note"
            Expect.isFalse (out.ToString().Contains "speed-up") "no scaling table"
            use out2 = new IO.StringWriter()
            use error2 = new IO.StringWriter()
            Bench.run out2 error2 [| "--threads"; "1,2,1"; "--workload"; "ceiling-compute"; "--runs"; "1"; "--warmup"; "1" |] |> ignore
            Expect.stringContains (error2.ToString()) "--threads 1,2,1 repeats a count; each is measured once (1,2)" "the note in a sweep"
            Expect.isFalse (error2.ToString().Contains "no thread sweep") "a sweep still runs"
            Expect.stringContains (out2.ToString()) "speed-up" "the scaling table"
        }

        test "a thread sweep with --warmup 0 says what that costs, and still measures" {
            use out = new IO.StringWriter()
            use error = new IO.StringWriter()
            let code = Bench.run out error [| "--threads"; "1,2"; "--workload"; "ceiling-compute"; "--runs"; "1"; "--warmup"; "0" |]
            Expect.equal code 0 "exit 0"
            Expect.stringContains (error.ToString()) "--warmup 0 in a thread sweep leaves first-touch and JIT costs to whichever count runs first" "the note"
            Expect.stringContains (out.ToString()) "| ceiling-compute |" "rows measured"
            use out1 = new IO.StringWriter()
            use error1 = new IO.StringWriter()
            Bench.run out1 error1 [| "--threads"; "1,2"; "--workload"; "ceiling-compute"; "--runs"; "1"; "--warmup"; "1" |] |> ignore
            Expect.isFalse (error1.ToString().Contains "--warmup 0") "no note with a warm-up run"
        }

        test "the JSON records the managed engine's polling time (spin_us), so runs with HYBRID_SPIN_US=0 are told apart" {
            let path = IO.Path.Combine(IO.Path.GetTempPath(), sprintf "hybrid-bench-spin-%s.json" (Guid.NewGuid().ToString "N"))
            try
                use out = new IO.StringWriter()
                use error = new IO.StringWriter()
                let code = Bench.run out error [| "--device"; "managed"; "--workload"; "ceiling-compute"; "--runs"; "1"; "--warmup"; "0"; "--json"; path |]
                Expect.equal code 0 "exit 0"
                use doc = Text.Json.JsonDocument.Parse(IO.File.ReadAllText path)
                let row = doc.RootElement.[0]
                Expect.equal (row.GetProperty("spin_us").GetInt32()) Hybrid.Dsp.Parallelism.SpinMicroseconds "the setting in force"
            finally
                IO.File.Delete path
        }

        test "a ceiling asked for on another engine is skipped with a line that says so, not silently" {
            use out = new IO.StringWriter()
            use error = new IO.StringWriter()
            let code = Bench.run out error [| "--device"; "ilgpu-cpu"; "--workload"; "ceiling-compute"; "--runs"; "1"; "--warmup"; "0" |]
            Expect.equal code 0 "exit 0"
            Expect.stringContains (error.ToString()) "ceiling-compute measures the machine on the managed engine only; skipped on ilgpu-cpu" "the skip is named"
            Expect.isFalse (out.ToString().Contains "| ceiling-compute |") "no row for it"
        }

        test "the machine's ceilings are managed-only workloads that split their work over the engine's threads" {
            let ceilings = Bench.workloads |> List.filter (fun w -> w.Name.StartsWith "ceiling-")
            Expect.equal (ceilings |> List.map _.Name) [ "ceiling-compute"; "ceiling-memory" ] "both ceilings listed"
            Expect.all ceilings (fun w -> w.ManagedOnly) "managed only"
            Expect.all (Bench.workloads |> List.filter (fun w -> not (w.Name.StartsWith "ceiling-"))) (fun w -> not w.ManagedOnly) "the workloads run on every engine"
            use engine = new Hybrid.Dsp.Managed.ManagedEngine(2)
            let rows = Bench.measureInterleaved engine [ 1; 2 ] 1 (Some 0) (ceilings |> List.find (fun w -> w.Name = "ceiling-compute"))
            Expect.isTrue (rows |> List.forall (fun r -> r.gflops.Value > 0.0 && r.cpu_ms > 0.0 && r.gb_per_s.IsNone)) "timed, GFLOP/s counted"
            let memory = Bench.measureInterleaved engine [ 1; 2 ] 1 (Some 0) (ceilings |> List.find (fun w -> w.Name = "ceiling-memory"))
            for r in memory do
                // 2 x 200 MB (read and written) over the median time.
                Expect.floatClose Accuracy.medium r.gb_per_s.Value (0.4 / (r.median_ms / 1000.0)) "GB/s of 400 MB moved"
                Expect.isNone r.gflops "no GFLOP/s for a copy"
        }
    ]
