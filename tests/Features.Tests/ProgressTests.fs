module Hybrid.FeaturesTests.ProgressTests

open System
open System.IO
open Expecto
open Hybrid.Features

[<Tests>]
let tests =
    testSequenced <| testList "Progress" [
        test "with standard error redirected a reporter prints plain lines ending at 100%" {
            let original = Console.Error
            use writer = new StringWriter()
            Console.SetError writer
            try
                let p = Progress.create "extract" 20
                for i in 1 .. 20 do p.Report i
                p.Finish()
            finally
                Console.SetError original
            let lines = writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            Expect.isGreaterThan lines.Length 1 "expected several plain lines"
            Expect.isFalse (writer.ToString().Contains "\r") "expected no carriage returns when redirected"
            Expect.stringContains lines.[lines.Length - 1] "20/20 (100%)" "expected the last line to report completion"
        }
    ]
