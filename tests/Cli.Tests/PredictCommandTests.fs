/// `hybrid predict --windows` and `--csv`: per-window results of long recordings through the one inference path.
module Hybrid.CliTests.PredictCommandTests

open System
open System.IO
open System.Text.Json
open Expecto
open Hybrid.TestSupport
open Hybrid.ClassifierTests

let private run = Commands.run

/// A cnn2d model without training, windows of 1.024 s every 0.512 s and no trim, and recordings of 3 s and 2 s.
let private withWindowedModel (body: string -> string list -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-predict-cli-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    try
        let p = ModelFixtures.preparation "cnn2d"
        let prepared = { p with Clips = { p.Clips with Segment = Some(8192, 4096); Trim = None } }
        let model = ModelFixtures.write (Path.Combine(dir, "m.hnn")) "cnn2d" [ "zero"; "one"; "two" ] prepared 5 10.0f
        let files = [ ModelFixtures.writeRecording (Path.Combine(dir, "a.wav")) 7 8000 3.0; ModelFixtures.writeRecording (Path.Combine(dir, "b.wav")) 8 8000 2.0 ]
        body model files
    finally
        Directory.Delete(dir, true)

let private probabilities (e: JsonElement) = [ for p in e.GetProperty("probabilities").EnumerateObject() -> p.Name, p.Value.GetDouble() ]

[<Tests>]
let tests =
    testList "PredictCommand" [
        test "--windows --json: one object per window with its times, and a file's windows average to predict's probabilities" {
            withWindowedModel (fun model files ->
                let code, out, err = run Hybrid.Cli.PredictCommand.run ([ "--model"; model; "--device"; "managed"; "--json" ] @ files)
                Expect.equal code 0 (sprintf "predict (stderr: %s)" err)
                let whole = [ for line in out.Trim().Split('\n') -> use d = JsonDocument.Parse line in nonNull (d.RootElement.GetProperty("path").GetString()), probabilities d.RootElement ]
                let code, out, err = run Hybrid.Cli.PredictCommand.run ([ "--model"; model; "--device"; "managed"; "--windows"; "--json" ] @ files)
                Expect.equal code 0 (sprintf "predict --windows (stderr: %s)" err)
                let windows =
                    [ for line in out.Trim().Split('\n') ->
                        use d = JsonDocument.Parse line
                        let r = d.RootElement
                        nonNull (r.GetProperty("path").GetString()), r.GetProperty("window").GetInt32(), r.GetProperty("start").GetDouble(), r.GetProperty("end").GetDouble(),
                        nonNull (r.GetProperty("label").GetString()), r.GetProperty("probability").GetDouble(), probabilities r ]
                // 3 s = 24,000 samples: windows start every 4,096 samples, the last at 15,808 ending at the end; 2 s: 0, 4096, 7808.
                let times file = [ for f, i, s, e, _, _, _ in windows do if f = file then yield i, Math.Round(s, 6), Math.Round(e, 6) ]
                Expect.equal (times files.[0]) [ 0, 0.0, 1.024; 1, 0.512, 1.536; 2, 1.024, 2.048; 3, 1.536, 2.56; 4, 1.976, 3.0 ] "the 3 s recording's windows"
                Expect.equal (times files.[1]) [ 0, 0.0, 1.024; 1, 0.512, 1.536; 2, 0.976, 2.0 ] "the 2 s recording's windows"
                for file, expected in whole do
                    let own = [ for f, _, _, _, _, _, p in windows do if f = file then yield p ]
                    for label, probability in expected do
                        let mean = own |> List.averageBy (fun p -> p |> List.find (fun (l, _) -> l = label) |> snd)
                        Expect.floatClose { absolute = 1e-6; relative = 1e-6 } mean probability (sprintf "%s: the windows' mean P(%s) is predict's" file label)
                for _, _, _, _, label, probability, p in windows do
                    Expect.equal (label, probability) (List.maxBy snd p) "each window's label and probability are its likeliest class")
        }

        test "--csv: a header naming every class, one row per window with --windows, one per file without; text lines name the window" {
            withWindowedModel (fun model files ->
                let code, out, err = run Hybrid.Cli.PredictCommand.run ([ "--model"; model; "--device"; "managed"; "--windows"; "--csv" ] @ files)
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                let lines = out.Trim().Split('\n') |> Array.map (fun l -> l.TrimEnd())
                Expect.equal lines.[0] "path,window,start,end,label,probability,zero,one,two" "the header"
                Expect.equal (lines.Length - 1) 8 "5 + 3 windows"
                let row = lines.[5].Split(',')
                Expect.equal (row.[0], row.[1], row.[2], row.[3]) (files.[0], "4", "1.976", "3.000") "the 3 s recording's last window"
                let p = row.[6..] |> Array.map (fun v -> Double.Parse(v, Globalization.CultureInfo.InvariantCulture))
                Expect.floatClose { absolute = 1e-6; relative = 1e-6 } (Array.sum p) 1.0 "the probabilities of every class"
                Expect.equal (Double.Parse(row.[5], Globalization.CultureInfo.InvariantCulture)) (Array.max p) "the top class's probability"
                let code, out, _ = run Hybrid.Cli.PredictCommand.run ([ "--model"; model; "--device"; "managed"; "--csv" ] @ files)
                Expect.equal code 0 "per file"
                let lines = out.Trim().Split('\n')
                Expect.equal (lines.[0].TrimEnd()) "path,label,probability,zero,one,two" "the header without windows"
                Expect.equal (lines.Length - 1) 2 "one row per file"
                let code, out, _ = run Hybrid.Cli.PredictCommand.run ([ "--model"; model; "--device"; "managed"; "--windows" ] @ files)
                Expect.equal code 0 "text"
                Expect.stringStarts (out.Split('\n').[4]) (sprintf "%s [4] 1.976-3.000 s: " files.[0]) "one line per window: index, start and end"
                let code, _, err = run Hybrid.Cli.PredictCommand.run ([ "--model"; model; "--csv"; "--json" ] @ files)
                Expect.equal code 2 "--csv with --json"
                Expect.stringContains err "--csv applies only without --json" "names the option")
        }
    ]
