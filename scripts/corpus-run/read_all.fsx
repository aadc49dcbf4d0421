// Corpus run, Hybrid's side: reads every file named in LIST (one path a line) with AudioFile.readWithInfo (every
// channel, the file's own rate) and writes one JSON line per file to standard output: outcome (ok, error or hang), rate, channels,
// frames, container, warning, milliseconds and bytes allocated by the read. The decoded samples go to
// SAMPLES/<line number>.f32 (float32, channel-major). Each read runs under a 10 s watchdog: a read that does not finish
// is written as "hang" and the process exits with code 3, so that run.py starts it again at the next line.
// Needs `dotnet fsi build.fsx build`. Usage: dotnet fsi read_all.fsx LIST SAMPLES [FIRST_LINE]
#r "../../src/Cli/bin/Release/net10.0/Hybrid.Features.dll"
#r "../../src/Cli/bin/Release/net10.0/NLayer.dll"
#r "../../src/Cli/bin/Release/net10.0/NVorbis.dll"

open System
open System.IO
open System.Text.Json
open System.Threading
open Hybrid.Features

let args = fsi.CommandLineArgs |> Array.skip 1
let files = File.ReadAllLines args.[0]
let samplesDir = args.[1]
let first = if args.Length > 2 then int args.[2] else 0
Directory.CreateDirectory samplesDir |> ignore
let out = Console.Out
let options = { AudioFile.defaults with Mono = false }

let write (index: int) (path: string) (fields: (string * obj) list) =
    let record = dict ([ "index", box index; "path", box path ] @ fields)
    out.WriteLine(JsonSerializer.Serialize record)
    out.Flush()

for index in first .. files.Length - 1 do
    let path = files.[index]
    let mutable result: (string * obj) list = []
    let worker =
        Thread(
            (fun () ->
                let before = GC.GetAllocatedBytesForCurrentThread()
                let clock = Diagnostics.Stopwatch.StartNew()
                try
                    let info, audio = AudioFile.readWithInfo options path
                    let ms = clock.Elapsed.TotalMilliseconds
                    let allocated = GC.GetAllocatedBytesForCurrentThread() - before
                    use samples = File.Create(Path.Combine(samplesDir, sprintf "%d.f32" index))
                    for channel in audio.Samples do
                        samples.Write(Runtime.InteropServices.MemoryMarshal.AsBytes(ReadOnlySpan<float32> channel))
                    result <-
                        [ "outcome", box "ok"; "rate", box info.SampleRate; "channels", box info.Channels; "frames", box audio.Frames
                          "infoFrames", box info.Frames; "container", box info.Container; "encoding", box info.Encoding
                          "warning", box (Option.toObj info.Warning); "ms", box ms; "allocated", box allocated ]
                with e ->
                    let ms = clock.Elapsed.TotalMilliseconds
                    let allocated = GC.GetAllocatedBytesForCurrentThread() - before
                    result <- [ "outcome", box "error"; "type", box (e.GetType().Name); "message", box e.Message; "ms", box ms; "allocated", box allocated ]),
            256 * 1024 * 1024)
    worker.IsBackground <- true
    worker.Start()
    if worker.Join 10000 then write index path result
    else
        write index path [ "outcome", box "hang"; "ms", box 10000.0 ]
        exit 3
    GC.Collect()
write -1 "" [ "outcome", box "done"; "peakWorkingSet", box (Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64) ]
