/// Expect helpers with "expected ..., was ..." messages for float arrays.
module Hybrid.TestSupport.Assertions

open System
open Expecto

/// Largest absolute difference between two equally long arrays (NaN if any element is NaN).
let maxAbsDiff (expected: float32[]) (actual: float32[]) =
    if expected.Length <> actual.Length then
        failtestf "expected %d elements, was %d" expected.Length actual.Length
    let mutable worst = 0.0
    for i in 0 .. expected.Length - 1 do
        let d = abs (float expected.[i] - float actual.[i])
        if Double.IsNaN d then worst <- nan
        elif d > worst then worst <- d
    worst

/// Fails unless every |actual - expected| <= atol + rtol * |expected|, naming the first offending index.
let allClose (rtol: float) (atol: float) (expected: float32[]) (actual: float32[]) (what: string) =
    if expected.Length <> actual.Length then
        failtestf "%s: expected %d elements, was %d" what expected.Length actual.Length
    for i in 0 .. expected.Length - 1 do
        let e = float expected.[i]
        let a = float actual.[i]
        if not (abs (a - e) <= atol + rtol * abs e) then
            failtestf "%s: at index %d expected %g, was %g (rtol %g, atol %g)" what i e a rtol atol

/// Same as allClose for float arrays.
let allClose64 (rtol: float) (atol: float) (expected: float[]) (actual: float[]) (what: string) =
    if expected.Length <> actual.Length then
        failtestf "%s: expected %d elements, was %d" what expected.Length actual.Length
    for i in 0 .. expected.Length - 1 do
        let e = expected.[i]
        let a = actual.[i]
        if not (abs (a - e) <= atol + rtol * abs e) then
            failtestf "%s: at index %d expected %g, was %g (rtol %g, atol %g)" what i e a rtol atol
