/// Array.Parallel under the process-wide thread setting (Hybrid.Dsp.Parallelism.MaxThreads, the command line's
/// `--threads`): every parallel map of feature extraction and training goes through here.
module Hybrid.Features.Threads

open System

/// Array.Parallel.map on at most Parallelism.MaxThreads threads; the first exception `f` raises is rethrown as is.
let map (f: 'T -> 'U) (items: 'T[]) : 'U[] = Hybrid.Dsp.Parallelism.Map(items, Func<'T, 'U> f)

/// Parallel.For over [0, count) on at most Parallelism.MaxThreads threads; the first exception is rethrown as is.
let forEach (count: int) (body: int -> unit) : unit = Hybrid.Dsp.Parallelism.For(count, Action<int> body)
