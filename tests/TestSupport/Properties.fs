/// FsCheck for every suite: the domain generators the suites share (HybridArb), registered once in `Properties.config`,
/// and failing cases kept as regressions (`Properties.testProperty` runs each kept replay seed as a named test).
///
/// Keeping a failure: when a property fails, Expecto prints
///     Focus on error:
///         etestPropertyWithConfig (SEEDUL, GAMMAUL, Some SIZE) "name"
/// Paste those three values into the property's regression list, next to the property, with what the case found:
///     Properties.testProperty config "name" [ Properties.regression SEEDUL GAMMAUL (Some SIZE) "n = 2 lost the DC bin" ] (fun ...)
/// The replay starts at the failing case itself, so the named test "name (regression: ...)" reruns exactly that case
/// on every run, before and after the fix. A replay seed names a case only through the generators it was drawn from:
/// a change to an argument's type or to a HybridArb generator the property uses re-draws it, so such a change checks
/// that each kept seed still reaches its case (or replaces the seed).
module Hybrid.TestSupport.Properties

open Expecto
open FsCheck
open FsCheck.FSharp

/// Lengths of the FFT tests: powers of two and their neighbours (radix-2, odd and prime lengths on each side of a
/// warp or block boundary), mixed-radix lengths (12, 15, 60, 100, 400, 480, 1000) and Bluestein primes (17, 31, 97,
/// 127, 257).
let fftBoundaryLengths =
    [| 2; 3; 4; 5; 6; 7; 8; 12; 15; 16; 17; 31; 32; 33; 60; 63; 64; 65; 97; 100; 127; 128; 129; 255; 256; 257; 400; 480
       511; 512; 1000; 1024 |]

/// Largest FftLength drawn outside the boundary list.
[<Literal>]
let MaxFftLength = 2048

/// An FFT length n in 2..MaxFftLength: one of fftBoundaryLengths (two draws in three) or any length of the range.
type FftLength = FftLength of int

/// A batch of 1..11 rows or clips (one, odd and even counts, more than a small SIMD width): the batch properties of
/// the FFT, STFT and spectral features.
type BatchSize = BatchSize of int

/// The domain generators of the suites, registered by `Properties.config`: a property that takes one of these
/// types draws from the generator here instead of building it from picks of its own.
type HybridArb =
    /// FftLength: fftBoundaryLengths or 2..MaxFftLength; shrinks to the boundary lengths below it.
    static member FftLength() : Arbitrary<FftLength> =
        let gen = Gen.frequency [ 2, Gen.elements fftBoundaryLengths; 1, Gen.choose (2, MaxFftLength) ]
        let shrink n = fftBoundaryLengths |> Seq.filter (fun m -> m < n)
        Arb.fromGenShrink (gen, shrink) |> Arb.convert FftLength (fun (FftLength n) -> n)

    /// BatchSize: 1..11; shrinks towards one row.
    static member BatchSize() : Arbitrary<BatchSize> =
        Arb.fromGenShrink (Gen.choose (1, 11), (fun b -> seq { 1 .. b - 1 })) |> Arb.convert BatchSize (fun (BatchSize b) -> b)

/// The one FsCheck configuration of the suites: HybridArb registered and maxTest cases per property (FsCheck's own
/// sizes and Expecto's printed replay seed on failure, as in FsCheckConfig.defaultConfig).
let config (maxTest: int) =
    { FsCheckConfig.defaultConfig with maxTest = maxTest; arbitrary = typeof<HybridArb> :: FsCheckConfig.defaultConfig.arbitrary }

/// `config 100`: the case count of Expecto's testProperty.
let defaults = config FsCheckConfig.defaultConfig.maxTest

/// A failing case kept: the seed, gamma and size Expecto printed after "Focus on error:" and what the case found
/// (it names the regression test, so it must be unique among the property's regressions).
type Regression = { Seed: uint64; Gamma: uint64; Size: int option; Found: string }

/// A Regression from the three printed values and what the case found.
let regression (seed: uint64) (gamma: uint64) (size: int option) (found: string) =
    { Seed = seed; Gamma = gamma; Size = size; Found = found }

/// The property `name` under `config` (its random cases, as testPropertyWithConfig) followed by one test per kept
/// regression, "name (regression: found)", that replays that case alone (maxTest 1 from its seed and size).
let testProperty (config: FsCheckConfig) (name: string) (regressions: Regression list) (property: 'a) : Test list =
    testPropertyWithConfig config name property
    :: [ for r in regressions ->
             testPropertyWithConfigStdGen (r.Seed, r.Gamma, r.Size) { config with maxTest = 1 } $"{name} (regression: {r.Found})" property ]
