module Hybrid.ClassifierTests.ReportTests

open System
open System.IO
open Expecto
open Hybrid.Classifier

/// A headless Chromium on PATH ($HYBRID_CHROMIUM names another), or None.
let private chromium () =
    let named = match Environment.GetEnvironmentVariable "HYBRID_CHROMIUM" with null | "" -> [] | name -> [ name ]
    let candidates = named @ [ "chromium"; "chromium-browser"; "google-chrome" ]
    let onPath (name: string) =
        if Path.IsPathRooted name then (if File.Exists name then Some name else None)
        else
            (Environment.GetEnvironmentVariable "PATH" |> Option.ofObj |> Option.defaultValue "").Split(Path.PathSeparator)
            |> Array.map (fun dir -> Path.Combine(dir, name))
            |> Array.tryFind File.Exists
    candidates |> List.tryPick onPath

/// Runs a browser with arguments, returning its standard output (fails the test after 60 s).
let private runBrowser (exe: string) (args: string list) =
    let info = Diagnostics.ProcessStartInfo(exe, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    for a in args do info.ArgumentList.Add a
    use p = nonNull (Diagnostics.Process.Start info)
    let err = p.StandardError.ReadToEndAsync()
    let out = p.StandardOutput.ReadToEnd()
    if not (p.WaitForExit 60000) then
        p.Kill true
        failtestf "%s did not finish in 60 s" exe
    out, err.Result

/// The rows of a run's settings at their longest: a data path, a label map and a schema's parameters without spaces.
let private longSettings =
    [ "data", "/very/long/path/without/any/spaces/" + String.replicate 8 "UrbanSound8K_audio_fold_folder/"
      "label_map", String.Join(",", [ for i in 0 .. 40 -> sprintf "class_name_%d=target_label_%d" i (i % 10) ])
      "model", "cnn2d"
      "schema_parameters", String.Join(";", [ for i in 0 .. 30 -> sprintf "parameter_%d=%d" i (i * 1000) ]) ]

let private reportWithLongSettings (dir: string) =
    Report.write dir "Hybrid training run: cnn2d on fold10" [
        Report.Table("Summary", [ "model", "cnn2d"; "clips", "8732" ])
        Report.Grid("Folds", [ "fold"; "train recordings"; "validation recordings"; "test recordings"; "train accuracy"; "validation accuracy"; "test accuracy"; "training s" ],
                    [ [ "fold10"; "7895"; "0"; "837"; "0.9999"; "-"; "0.7000"; "123.4" ] ])
        Report.Table("Settings", longSettings)
    ]

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
        test "long setting values wrap: the settings table has a fixed layout and long values a wrapping class" {
            let dir = Path.Combine(Path.GetTempPath(), "hybrid-report-" + Guid.NewGuid().ToString("N"))
            try
                let html = File.ReadAllText(reportWithLongSettings dir)
                for rule in [ "table.settings{table-layout:fixed;width:100%"; "overflow-wrap:anywhere"; "word-break:break-word"; "img{max-width:min(520px,100%)"; ".wide{max-width:100%;overflow-x:auto}" ] do
                    Expect.stringContains html rule (sprintf "expected the CSS rule %s" rule)
                Expect.stringContains html "<table class=\"settings\">" "key/value tables are settings tables"
                Expect.stringContains html "<div class=\"wide\"><table>" "grids scroll in their own box"
                Expect.stringContains html "<tr><th>model</th><td>cnn2d</td></tr>" "a short value is a plain cell"
                Expect.stringContains html "<td class=\"long\">class_name_0=target_label_0,<wbr>class_name_1" "a long list breaks after its commas"
                Expect.stringContains html "parameter_0=0;<wbr>parameter_1" "a long list breaks after its semicolons"
                Expect.equal (Report.valueCell (String.replicate Report.longValueChars "x")) (sprintf "<td>%s</td>" (String.replicate Report.longValueChars "x")) "a value of the threshold's length stays plain"
            finally
                if Directory.Exists dir then Directory.Delete(dir, true)
        }
        test "a report with long settings is no wider than an 800 px window in headless Chromium" {
            match chromium () with
            | None ->
                let message = "no chromium, chromium-browser or google-chrome on PATH (or $HYBRID_CHROMIUM)"
                // CI (.ci/run) installs Debian's chromium, so there a missing browser fails like missing data.
                if Hybrid.TestSupport.TestData.requireData () then failtestf "%s and HYBRID_REQUIRE_DATA is set" message
                else skiptest message
            | Some exe ->
                let dir = Path.Combine(Path.GetTempPath(), "hybrid-report-" + Guid.NewGuid().ToString("N"))
                try
                    let path = reportWithLongSettings dir
                    // A copy that writes the page's scroll width and the window's width into the DOM once laid out.
                    let probe = Path.Combine(dir, "probe.html")
                    let script = "<script>document.body.insertAdjacentHTML('beforeend','<pre id=\"hybrid-width\">'+document.documentElement.scrollWidth+'x'+document.documentElement.clientWidth+'</pre>')</script>"
                    File.WriteAllText(probe, File.ReadAllText(path).Replace("</body>", script + "</body>"))
                    let common = [ "--headless"; "--no-sandbox"; "--disable-gpu"; "--hide-scrollbars"; "--user-data-dir=" + Path.Combine(dir, "profile"); "--window-size=800,2400" ]
                    let dom, err = runBrowser exe (common @ [ "--dump-dom"; Uri(probe).AbsoluteUri ])
                    let m = Text.RegularExpressions.Regex.Match(dom, "id=\"hybrid-width\">(\\d+)x(\\d+)<")
                    Expect.isTrue m.Success (sprintf "expected the page's widths in the dumped DOM (stderr: %s)" err)
                    let scroll, client = int m.Groups.[1].Value, int m.Groups.[2].Value
                    Expect.equal client 800 "the window is 800 px wide"
                    Expect.isLessThanOrEqual scroll client (sprintf "the page is %d px wide in an %d px window: something overflows" scroll client)
                    let shot = Path.Combine(dir, "report.png")
                    runBrowser exe (common @ [ "--screenshot=" + shot; Uri(path).AbsoluteUri ]) |> ignore
                    let width, _, _ = Hybrid.Features.Plots.inspectPng shot
                    Expect.equal width 800 "the screenshot is the window's width"
                finally
                    if Directory.Exists dir then Directory.Delete(dir, true)
        }
    ]
