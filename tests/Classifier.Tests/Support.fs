/// Shared helpers of the classifier tests: the engines every engine-generic test runs on, random data.
module Hybrid.ClassifierTests.Support

open System
open Hybrid.Dsp
open Hybrid.Dsp.Managed

/// Engines with neural-network kernels; an ILGPU engine becomes one more entry when its NN kernels exist.
let engines: (string * (unit -> Engine)) list =
    [ "managed", (fun () -> new ManagedEngine(2) :> Engine) ]

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
