/// Shared helpers of the classifier tests: the engines every engine-generic test runs on, random data.
module Hybrid.ClassifierTests.Support

open System
open Hybrid.Dsp
open Hybrid.Dsp.Managed

/// A test's hold on an engine: disposing it disposes the engine only when the lease created it (the ilgpu-cpu engine is
/// shared by the whole run, since creating an ILGPU context is slow).
type EngineLease(engine: Engine, owned: bool) =
    member _.Engine = engine
    interface IDisposable with
        member _.Dispose() = if owned then engine.Dispose()

/// The one ilgpu-cpu engine of this run.
let private ilgpuCpu = lazy (Engines.Create "ilgpu-cpu")

/// The one cuda engine of this run, on machines with a CUDA device.
let private cuda = lazy (Engines.Create "cuda")

/// The one opencl engine of this run, where an OpenCL device qualifies (PoCL's CPU device after `build.fsx pocl`).
let private opencl = lazy (Engines.Create "opencl")

let private available = lazy (Engines.Available())

/// Engines with neural-network kernels: a fresh managed engine per test, the shared ilgpu-cpu engine, and the shared
/// opencl and cuda engines where this machine has such a device (tests on a shared engine run in its sequenced group,
/// see `onEngine`). The Dsp.Kernels tests fail in CI when opencl is missing.
let engines: (string * (unit -> EngineLease)) list =
    [ yield "managed", (fun () -> new EngineLease(new ManagedEngine(2), true))
      yield "ilgpu-cpu", (fun () -> new EngineLease(ilgpuCpu.Value, false))
      if Seq.contains "opencl" available.Value then yield "opencl", (fun () -> new EngineLease(opencl.Value, false))
      if Seq.contains "cuda" available.Value then yield "cuda", (fun () -> new EngineLease(cuda.Value, false)) ]

/// The ILGPU engines the device-resident training tests (transfer counts, resume, agreement with managed) run on:
/// ilgpu-cpu, and opencl where present.
let deviceEngines = engines |> List.map fst |> List.filter (fun n -> n = "ilgpu-cpu" || n = "opencl")

/// A lease on the shared engine called `name` (one of `engines`).
let leaseOn (name: string) = (engines |> List.find (fun (n, _) -> n = name) |> snd) ()

/// Wraps the tests of one engine: those on a shared ILGPU engine run one at a time.
let onEngine (engineName: string) (tests: Expecto.Test) =
    if engineName = "managed" then tests else Expecto.Tests.testSequencedGroup engineName tests

/// Uniform floats in [-1, 1) from a seeded System.Random.
let uniform (rng: Random) count = Array.init count (fun _ -> float32 (rng.NextDouble() * 2.0 - 1.0))

/// Product of a shape.
let size (shape: int[]) = Array.fold (*) 1 shape

/// A tensor on `engine` holding `values` with `shape`.
let tensor (engine: Engine) (values: float32[]) (shape: int[]) = engine.FromHost(ReadOnlySpan<float32>(values), shape)

/// Fails unless two arrays are equal bit for bit, naming the first differing index.
let bitEqual (what: string) (expected: float32[]) (actual: float32[]) =
    if expected.Length <> actual.Length then
        failwithf "%s: expected %d elements, was %d" what expected.Length actual.Length
    for i in 0 .. expected.Length - 1 do
        if BitConverter.SingleToInt32Bits expected[i] <> BitConverter.SingleToInt32Bits actual[i] then
            failwithf "%s: at index %d expected %.9g, was %.9g (not bit-identical)" what i expected[i] actual[i]
