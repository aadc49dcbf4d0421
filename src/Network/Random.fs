namespace Hybrid.Classifier

open System

/// A small seeded generator (SplitMix64, Steele et al. 2014) whose sequence is fixed by this code alone, so the
/// same seed gives the same weights and shuffles on every .NET version and machine.
type internal SplitMix(seed: uint64) =
    let mutable state = seed
    member _.NextUInt64() =
        state <- state + 0x9E3779B97F4A7C15UL
        let mutable z = state
        z <- (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
        z <- (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
        z ^^^ (z >>> 31)
    /// Uniform in [0, 1) with 53 random bits.
    member g.NextDouble() = float (g.NextUInt64() >>> 11) * (1.0 / 9007199254740992.0)
    /// Uniform integer in [0, n).
    member g.NextInt(n: int) = int ((g.NextUInt64() >>> 33) % uint64 n)
    /// Standard normal (Box-Muller).
    member g.NextNormal() =
        let u1 = 1.0 - g.NextDouble()
        let u2 = g.NextDouble()
        sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2)
    /// Mixes a seed with stream identifiers into an independent seed.
    static member Derive(seed: int, [<ParamArray>] ids: int[]) =
        let g = SplitMix(uint64 (int64 seed) * 0x2545F4914F6CDD1DUL + 0x1234567UL)
        let mutable h = g.NextUInt64()
        for id in ids do
            h <- SplitMix(h ^^^ (uint64 (int64 id) * 0x9E3779B97F4A7C15UL)).NextUInt64()
        h

module internal Initializers =
    /// Weights of a kernel with the given fans, drawn from `rng`.
    let sample (init: Init) (fanIn: int) (fanOut: int) (count: int) (rng: SplitMix) : float32[] =
        let fi, fo = float fanIn, float fanOut
        match init with
        | GlorotUniform ->
            let l = sqrt (6.0 / (fi + fo))
            Array.init count (fun _ -> float32 ((2.0 * rng.NextDouble() - 1.0) * l))
        | HeUniform ->
            let l = sqrt (6.0 / fi)
            Array.init count (fun _ -> float32 ((2.0 * rng.NextDouble() - 1.0) * l))
        | GlorotNormal ->
            let s = sqrt (2.0 / (fi + fo))
            Array.init count (fun _ -> float32 (rng.NextNormal() * s))
        | HeNormal ->
            let s = sqrt (2.0 / fi)
            Array.init count (fun _ -> float32 (rng.NextNormal() * s))
