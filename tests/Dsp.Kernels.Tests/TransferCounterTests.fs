/// The ILGPU engines' transfer counter: host-to-device and device-to-host copies and synchronisations, each counted
/// once with its bytes under the call site outside the engine (and the engine method that made it).
module Hybrid.DspKernelsTests.TransferCounterTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.Dsp.Ilgpu
open Hybrid.DspKernelsTests.IlgpuFixture

/// Runs f with the shared engine's counter reset and enabled; returns the counts it made.
let private counted (f: IlgpuEngine -> unit) =
    let e = engine.Value :?> IlgpuEngine
    e.Transfers.Reset()
    e.Transfers.Enabled <- true
    try
        f e
        e.Transfers.Snapshot()
    finally
        e.Transfers.Enabled <- false
        e.Transfers.Reset()

/// This module's call sites start with its name (F# closures fold into the module).
let private here = "Hybrid.DspKernelsTests.TransferCounterTests"

let private uploadAndRead (e: IlgpuEngine) =
    use t = e.Allocate(4, 8)
    t.CopyFrom(ReadOnlySpan<float32>(Array.create 32 1.0f))
    t.CopyFrom(ReadOnlySpan<float32>(Array.create 8 2.0f), 8L)
    e.Synchronize()
    t.ToArray() |> ignore

[<Tests>]
let tests =
    ilgpuList "TransferCounter" [
        test "copies and synchronisations are counted by kind with their bytes, under the caller's name" {
            let counts = counted uploadAndRead
            let find kind = counts |> List.ofSeq |> List.filter (fun c -> c.Kind = kind)
            match find TransferKind.HostToDevice with
            | [ up ] ->
                Expect.equal up.Count 2 "uploads"
                Expect.equal up.Bytes (40L * 4L) "bytes uploaded"
                Expect.stringStarts up.CallSite (here + ".uploadAndRead") "upload call site"
            | other -> failtestf "one upload call site expected, got %A" other
            match find TransferKind.DeviceToHost with
            | [ down ] ->
                Expect.equal (down.Count, down.Bytes) (1, 32L * 4L) "one read of 32 floats"
                Expect.stringStarts down.CallSite (here + ".uploadAndRead") "read call site"
            | other -> failtestf "one read call site expected, got %A" other
            Expect.equal (find TransferKind.Synchronize |> List.sumBy _.Count) 1 "synchronisations"
        }

        test "a read made inside an engine operation names the operation after the caller" {
            let counts =
                counted (fun e ->
                    use t = e.FromHost(ReadOnlySpan<float32>(Array.init 100 float32), [| 100 |])
                    e.Nn.SumOfSquares t |> ignore)
            let reads = counts |> Seq.filter (fun c -> c.Kind = TransferKind.DeviceToHost) |> List.ofSeq
            Expect.equal (reads |> List.sumBy _.Count) 1 "one read back of the partial sums"
            Expect.stringContains reads.Head.CallSite "[IlgpuNn.SumOfSquares]" "the engine operation is named"
            Expect.stringStarts reads.Head.CallSite here "the caller is named"
        }

        test "a disabled counter counts nothing, and Reset forgets the counts" {
            let e = engine.Value :?> IlgpuEngine
            e.Transfers.Enabled <- false
            e.Transfers.Reset()
            uploadAndRead e
            Expect.isEmpty (e.Transfers.Snapshot()) "nothing counted while disabled"
            let counts = counted uploadAndRead
            Expect.isNonEmpty counts "counted while enabled"
            Expect.isEmpty (e.Transfers.Snapshot()) "reset after the run"
            Expect.equal (e.Transfers.Total TransferKind.DeviceToHost) 0 "total after reset"
        }
    ]
