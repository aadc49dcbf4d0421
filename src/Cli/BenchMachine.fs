/// What `hybrid bench` reads from the machine around a workload: the load average and the peak resident memory.
module Hybrid.Cli.BenchMachine

open System
open System.Diagnostics
open System.IO
open System.Threading

/// The 1-minute load average (/proc/loadavg), when readable.
let loadAverage () =
    try
        let text = File.ReadAllText "/proc/loadavg"
        Some(Double.Parse(text.Split(' ').[0], Globalization.CultureInfo.InvariantCulture))
    with _ ->
        None

/// The kernel's peak resident set of this process (VmHWM in /proc/self/status) in bytes, when readable.
let private residentPeak () =
    try
        File.ReadAllLines "/proc/self/status"
        |> Array.tryFind (fun l -> l.StartsWith "VmHWM:")
        |> Option.map (fun l -> int64 (l.Substring(6).Trim().Split(' ').[0]) * 1024L)
    with _ ->
        None

/// Resets the kernel's peak resident set of this process (Linux 4.0+: "5" to /proc/self/clear_refs); false when
/// the system offers no such reset.
let private resetResidentPeak () =
    try
        File.WriteAllText("/proc/self/clear_refs", "5")
        (residentPeak ()).IsSome
    with _ ->
        false

/// The peak working set in MB while `action` runs. On Linux the kernel keeps the peak (VmHWM), reset before the
/// action and read after it, so measuring costs nothing during the timed runs; elsewhere a thread samples the working
/// set every 5 ms (which takes CPU time from the workload on a small machine).
let peakDuring (action: unit -> unit) =
    use proc = Process.GetCurrentProcess()
    if resetResidentPeak () then
        action ()
        proc.Refresh()
        let peak = residentPeak () |> Option.defaultValue 0L
        float (max peak proc.WorkingSet64) / 1048576.0
    else
        let mutable peak = 0L
        use stop = new ManualResetEventSlim(false)
        let sampler =
            Thread(
                (fun () ->
                    while not (stop.Wait 5) do
                        proc.Refresh()
                        peak <- max peak proc.WorkingSet64),
                IsBackground = true
            )
        sampler.Start()
        action ()
        proc.Refresh()
        peak <- max peak proc.WorkingSet64
        stop.Set()
        sampler.Join()
        float peak / 1048576.0
