/// Engine.cs: the operations on many tensors at once (Gather, Scatter, ReadTensors) give the same floats on managed,
/// ilgpu-cpu (and cuda where a GPU is present) as each tensor's own read, ReadTensors reads from a device once, and bad
/// arguments are refused naming the parameter.
module Hybrid.DspKernelsTests.EngineTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.Dsp.Ilgpu
open Hybrid.DspKernelsTests.IlgpuFixture

/// Shapes straddling warp boundaries, an empty tensor among them, and a view into the middle of a larger tensor
/// (the tensors a flat parameter buffer hands out).
let private shapes = [ [| 31 |]; [| 4; 8 |]; [| 0 |]; [| 3; 11 |]; [| 1 |] ]

/// Runs Gather into a [total + 5] tensor at offset 2, Scatter from it back into fresh tensors, and ReadTensors of the
/// sources; returns (each source's ToArray, gathered, scattered, read), all on the host.
let private roundTrip (e: Engine) =
    let sources = shapes |> List.mapi (fun i s -> upload e (randomSignal (40 + i) (Array.fold (*) 1 s)) s)
    // A reshaped tensor shares its storage: the list also holds a view that does not start at element 0 of its buffer
    // on the managed engine (a Slice), so offsets inside storage are exercised.
    use storage = upload e (randomSignal 50 64) [| 8; 8 |]
    let view =
        match storage with
        | :? ManagedTensor as m -> m.Slice(3, 2) :> Tensor
        | _ ->
            let device = e.Nn :?> INnDeviceTraining
            device.View(storage, 24L, 2, 8)
    let all = sources @ [ view ]
    let total = all |> List.sumBy (fun t -> int t.Length)
    use flat = e.Allocate [| total + 5 |]
    e.Gather(all, flat, 2L)
    let targets = all |> List.map (fun t -> e.Allocate t.Shape)
    e.Scatter(flat, 2L, targets)
    let own = all |> List.map (fun t -> t.ToArray())
    let result = own, flat.ToArray(), (targets |> List.map (fun t -> t.ToArray())), e.ReadTensors(all)
    for t in sources @ targets do t.Dispose()
    result

let private engines () : (string * Engine) list =
    [ yield "managed", (new ManagedEngine(2) :> Engine)
      for name, e in ilgpuEngines -> name, e.Value ]

[<Tests>]
let tests =
    ilgpuList "Engine" [
        test "Gather, Scatter and ReadTensors keep every float of every tensor, in list order, on every engine" {
            for name, e in engines () do
                let own, gathered, scattered, read = roundTrip e
                let concatenated = Array.concat own
                Expect.sequenceEqual gathered[2 .. 2 + concatenated.Length - 1] concatenated (sprintf "%s: gathered from offset 2" name)
                Expect.sequenceEqual gathered[.. 1] [| 0.0f; 0.0f |] (sprintf "%s: elements before the offset untouched" name)
                Expect.sequenceEqual gathered[2 + concatenated.Length ..] (Array.zeroCreate 3) (sprintf "%s: elements after the range untouched" name)
                List.iteri2 (fun i (a: float32[]) (b: float32[]) -> Expect.sequenceEqual b a (sprintf "%s: scattered tensor %d" name i)) own scattered
                Expect.sequenceEqual read concatenated (sprintf "%s: read together" name)
        }

        test "ilgpu-cpu gives the managed engine's floats bit for bit" {
            use managed = new ManagedEngine(1)
            let managedOwn, managedGathered, managedScattered, managedRead = roundTrip managed
            for name, e in ilgpuEngines do
                let own, gathered, scattered, read = roundTrip e.Value
                let bits (a: float32[]) = a |> Array.map BitConverter.SingleToInt32Bits
                Expect.sequenceEqual (bits (Array.concat own)) (bits (Array.concat managedOwn)) (sprintf "%s: the inputs" name)
                Expect.sequenceEqual (bits gathered) (bits managedGathered) (sprintf "%s: Gather" name)
                Expect.sequenceEqual (bits (Array.concat scattered)) (bits (Array.concat managedScattered)) (sprintf "%s: Scatter" name)
                Expect.sequenceEqual (bits read) (bits managedRead) (sprintf "%s: ReadTensors" name)
        }

        test "ReadTensors of many tensors is one device-to-host read on ilgpu-cpu, and Gather and Scatter none" {
            let e = engine.Value :?> IlgpuEngine
            let tensors = [ for i in 1 .. 12 -> upload e (randomSignal i (i * 7)) [| i; 7 |] ]
            use flat = e.Allocate [| tensors |> List.sumBy (fun t -> int t.Length) |]
            e.Synchronize()
            e.Transfers.Reset()
            e.Transfers.Enabled <- true
            let read =
                try
                    e.Gather(tensors, flat)
                    e.Scatter(flat, 0L, tensors)
                    e.ReadTensors tensors
                finally e.Transfers.Enabled <- false
            let counts = e.Transfers.Snapshot() |> List.ofSeq
            e.Transfers.Reset()
            let reads = counts |> List.filter (fun c -> c.Kind = TransferKind.DeviceToHost)
            Expect.equal (reads |> List.sumBy _.Count) 1 (sprintf "device->host reads (%A)" reads)
            Expect.equal (reads |> List.sumBy _.Bytes) (4L * int64 read.Length) "the read's bytes: every tensor once"
            Expect.equal (counts |> List.filter (fun c -> c.Kind = TransferKind.HostToDevice)) [] "no upload"
            Expect.sequenceEqual read (tensors |> List.map (fun t -> t.ToArray()) |> Array.concat) "the tensors' floats"
            for t in tensors do t.Dispose()
        }

        test "tensors of another engine, a range past the end and a destination of the wrong length are refused naming the parameter" {
            use managed = new ManagedEngine(1)
            let e = engine.Value
            use here = e.Allocate [| 4 |]
            use there = managed.Allocate [| 4 |]
            let argument (f: unit -> unit) (name: string) (what: string) =
                let ex = Expect.throwsC (fun () -> f ()) id
                match ex with
                | :? ArgumentException as a -> Expect.equal a.ParamName name what
                | other -> failtestf "%s: expected an ArgumentException, was %s" what (other.GetType().Name)
            argument (fun () -> e.Gather([ there ], here)) "sources" "a source on another engine"
            argument (fun () -> e.Gather([ here ], there)) "destination" "a destination on another engine"
            argument (fun () -> e.Gather([ here ], here, 1L)) "offset" "four floats from offset 1 of four"
            argument (fun () -> e.Scatter(here, 0L, [ here; here ])) "offset" "eight floats from four"
            argument (fun () -> e.ReadTensors([ here ], Span<float32>(Array.zeroCreate 3))) "destination" "three floats for four"
            argument (fun () -> managed.ReadTensors([ here ]) |> ignore) "tensors" "a tensor of another engine"
        }
    ]
