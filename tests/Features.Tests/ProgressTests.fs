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
    
        test "a renderer in place makes every reporter until it is disposed; renderers nest" {
            let made = Collections.Generic.List<string * int>()
            let renderer (tag: string) : Progress.Renderer =
                fun label total ->
                    made.Add((tag + ":" + label, total))
                    Progress.silent
            do
                use _ = Progress.renderWith (renderer "outer")
                Progress.create "features" 10 |> ignore
                do
                    use _ = Progress.renderWith (renderer "inner")
                    Progress.create "train" 5 |> ignore
                Progress.create "download" 3 |> ignore
            let original = Console.Error
            use writer = new StringWriter()
            Console.SetError writer
            try
                let p = Progress.create "after" 1
                p.Report 1
                p.Finish()
            finally
                Console.SetError original
            Expect.equal (List.ofSeq made) [ "outer:features", 10; "inner:train", 5; "outer:download", 3 ] "the innermost renderer made each reporter"
            Expect.stringContains (writer.ToString()) "after: 1/1 (100%)" "after disposal the console reporter is back"
        }
    ]

