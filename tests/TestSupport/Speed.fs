/// Slow tests and the quick run that skips them: `dotnet fsi build.fsx test --quick` (or HYBRID_QUICK=1, or `--quick`
/// given to a test executable) reports every test wrapped by `slow` as skipped instead of running it.
module Hybrid.TestSupport.Speed

open System
open Expecto

/// Environment variable that, set to 1 or true, skips the tests wrapped by `slow`.
[<Literal>]
let QuickVariable = "HYBRID_QUICK"

/// True when this run skips slow tests (HYBRID_QUICK is 1 or true).
let quick () =
    match Environment.GetEnvironmentVariable QuickVariable with
    | null -> false
    | v -> v = "1" || v.Equals("true", StringComparison.OrdinalIgnoreCase)

let private skipIfQuick () =
    if quick () then skiptest (sprintf "slow test, skipped by a quick run (%s=1)" QuickVariable)

let private wrapCode (code: TestCode) =
    match code with
    | Sync body -> Sync(fun () -> skipIfQuick (); body ())
    | SyncWithCancel body -> SyncWithCancel(fun token -> skipIfQuick (); body token)
    | Async body -> Async(async { skipIfQuick (); return! body })
    | AsyncFsCheck (config, stress, body) -> AsyncFsCheck(config, stress, fun c -> async { skipIfQuick (); return! body c })

/// Marks every test case inside `test` as slow: it runs as written, except in a quick run, where it is reported
/// skipped (Expecto's "ignored") without running. The decision is taken when the case runs, so `--list-tests` still
/// lists it and the counts of a quick run add up to those of a full one. Names and focus states are kept.
let rec slow (test: Test) : Test =
    match test with
    | TestCase (code, state) -> TestCase(wrapCode code, state)
    | TestList (tests, state) -> TestList(List.map slow tests, state)
    | TestLabel (label, inner, state) -> TestLabel(label, slow inner, state)
    | Test.Sequenced (method, inner) -> Test.Sequenced(method, slow inner)
