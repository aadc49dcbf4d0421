/// `hybrid bench`'s rule for runs slowed by other processes on the same cores.
module Hybrid.CliTests.BenchTests

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
                { engine = "managed"; device = "cpu"; workload = "w1-logmel"; median_ms = 1000.0; clips_per_s = Some 3000.0
                  audio_s_per_s = None; gflops = None; samples_per_s = None; peak_mb = 100.0; host_to_device = None; device_to_host = None
                  synchronizations = None; cpu_ms = 800.0; threads = Some 2; cpu_share = Some 0.4
                  warning = Bench.contentionWarning "w1-logmel" "managed" 1000.0 800.0 2 }
            let lines = (Bench.table [ row ]).Split('\n') |> Array.map (fun l -> l.Trim())
            Expect.stringStarts lines.[0] "| engine | device | workload | median ms | CPU ms | CPU share |" "header"
            Expect.stringStarts lines.[2] "| managed | cpu | w1-logmel | 1000.0 | 800 | 40% (!) |" "row"
        }
    ]
