module Hybrid.ClassifierTests.ReportTests

open System
open System.IO
open Expecto
open Hybrid.Classifier

[<Tests>]
let tests =
    testList "Report" [
        test "a report holds every section, escapes text and links images relatively" {
            let dir = Path.Combine(Path.GetTempPath(), "hybrid-report-" + Guid.NewGuid().ToString("N"))
            try
                let path =
                    Report.write dir "Run <1>" [
                        Report.Table("Settings", [ "model", "cnn2d"; "split", "official & more" ])
                        Report.Grid("Per class", [ "label"; "f1" ], [ [ "0"; "0.99" ]; [ "1"; "1.00" ] ])
                        Report.Images("Plots", [ "plots/confusion.png", "Confusion matrix" ])
                    ]
                Expect.equal path (Path.Combine(dir, "report.html")) "expected report.html in the folder"
                let html = File.ReadAllText path
                Expect.stringContains html "<h1>Run &lt;1&gt;</h1>" "expected the escaped title"
                Expect.stringContains html "official &amp; more" "expected escaped values"
                Expect.stringContains html "<td>0.99</td>" "expected grid cells"
                Expect.stringContains html "src=\"plots/confusion.png\"" "expected a relative image link"
            finally
                if Directory.Exists dir then Directory.Delete(dir, true)
        }
    ]
