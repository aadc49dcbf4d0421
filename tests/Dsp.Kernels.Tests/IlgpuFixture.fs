/// The one ILGPU CPU-accelerator engine shared by every ILGPU test of this run (creating a Context is slow),
/// helpers to move arrays on and off an engine, and double-precision references.
module Hybrid.DspKernelsTests.IlgpuFixture

open System
open Expecto
open Hybrid.Dsp

/// The shared ilgpu-cpu engine, created on first use.
let engine: Lazy<Engine> = lazy (Engines.Create "ilgpu-cpu")

/// The engine names this machine can create (asked once: each query loads the GPU drivers).
let private available = lazy (Engines.Available())

/// The ILGPU engines the equivalence and parity tests run on: ilgpu-cpu always, opencl when an OpenCL device
/// qualifies (PoCL's CPU device after `dotnet fsi build.fsx pocl`; see `openclRequired`), and cuda when this machine
/// has a CUDA device (each created on first use and shared by the run).
let ilgpuEngines: (string * Lazy<Engine>) list =
    [ yield "ilgpu-cpu", engine
      if Seq.contains "opencl" available.Value then yield "opencl", lazy (Engines.Create "opencl")
      if Seq.contains "cuda" available.Value then yield "cuda", lazy (Engines.Create "cuda") ]

/// A test that passes when the opencl engine's tests run on this machine, and otherwise is skipped naming the PoCL
/// build that provides a CPU device, or fails under HYBRID_REQUIRE_DATA (CI), where the OpenCL lists must run.
let openclRequired name =
    testCase name (fun () ->
        if not (List.exists (fun (n, _) -> n = "opencl") ilgpuEngines) then
            let devices = Engines.OpenClDevices() |> Seq.map string |> String.concat "; "
            let message =
                sprintf "no qualifying OpenCL device (found: %s), so the opencl test lists did not run; build PoCL with 'dotnet fsi build.fsx pocl'"
                    (if devices = "" then "none" else devices)
            if Hybrid.TestSupport.TestData.requireData () then failtestf "%s and %s is set" message Hybrid.TestSupport.TestData.RequireDataVariable
            else skiptest message)

/// A test list whose tests run one at a time with every other list in the "ilgpu-cpu" group (they share one accelerator).
let ilgpuList name tests = testList name tests |> testSequencedGroup "ilgpu-cpu"

/// Uploads a host array as a tensor of the given shape.
let upload (e: Engine) (data: float32[]) (shape: int[]) = e.FromHost(ReadOnlySpan<float32>(data), shape)

/// Deterministic pseudo-random floats in [-1, 1) (the managed tests' generator).
let randomSignal (seed: int) (count: int) = Reference.noise seed count

/// Naive DFT in double precision of complex interleaved input (sign -1 forward, +1 inverse; no scaling).
let naiveDft (inverse: bool) (n: int) (x: float32[]) =
    let sign = if inverse then 1.0 else -1.0
    let y = Array.zeroCreate (2 * n)
    for k in 0 .. n - 1 do
        let mutable re = 0.0
        let mutable im = 0.0
        for j in 0 .. n - 1 do
            let q = (int64 j * int64 k) % int64 n
            let a = sign * 2.0 * Math.PI * float q / float n
            let c, s = cos a, sin a
            let xr, xi = float x.[2 * j], float x.[2 * j + 1]
            re <- re + xr * c - xi * s
            im <- im + xr * s + xi * c
        y.[2 * k] <- re
        y.[2 * k + 1] <- im
    y

/// Largest absolute value of a double array.
let maxAbs64 (xs: float[]) = xs |> Array.fold (fun m v -> max m (abs v)) 0.0

/// Fails unless f throws an ArgumentException whose message contains every fragment.
let throwsArgument (what: string) (fragments: string list) (f: unit -> unit) =
    let message =
        try
            f ()
            None
        with :? ArgumentException as e -> Some e.Message
    match message with
    | None -> failtestf "%s: expected an ArgumentException, none was thrown" what
    | Some m ->
        for fragment in fragments do
            if not (m.Contains fragment) then failtestf "%s: expected the message to mention '%s', was: %s" what fragment m
