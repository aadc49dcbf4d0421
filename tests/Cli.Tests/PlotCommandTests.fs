module Hybrid.CliTests.PlotCommandTests

open System
open System.IO
open Expecto
open Hybrid.TestSupport

let private run = Commands.run

/// Runs `f dir wav` on a one-second 440 Hz tone at 8 kHz written to `dir`/tone.wav, in a temporary folder
/// removed afterwards.
let private withToneWav (f: string -> string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-plot-" + Guid.NewGuid().ToString("N"))
    try
        let wav = Path.Combine(dir, "tone.wav")
        Directory.CreateDirectory dir |> ignore
        let samples = Array.init 8000 (fun i -> float32 (0.5 * sin (2.0 * Math.PI * 440.0 * float i / 8000.0)))
        Hybrid.Features.Wav.write wav Hybrid.Features.SampleFormat.Pcm16 { SampleRate = 8000; Samples = [| samples |] }
        f dir wav
    finally
        if Directory.Exists dir then Directory.Delete(dir, true)

[<Tests>]
let tests =
    testList "PlotCommand" [
        test "plot writes the five example pictures of a recording" {
            withToneWav (fun dir wav ->
                let code, out, err = run Hybrid.Cli.PlotCommand.run [ wav; "--out"; dir; "--device"; "managed" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                for kind in [ "waveform"; "spectrogram"; "mel"; "mfcc"; "chroma" ] do
                    let png = Path.Combine(dir, sprintf "tone-%s.png" kind)
                    Expect.stringContains out png "reported"
                    let w, h, colours = Hybrid.Features.Plots.inspectPng png
                    Expect.isGreaterThan (w * h) 100000 "a full-size picture"
                    Expect.isGreaterThan colours 8 "not blank")
        }

        test "plot takes librosa's analysis options and refuses one that does not fit the recording's rate" {
            withToneWav (fun dir wav ->
                let code, out, err = run Hybrid.Cli.PlotCommand.run [ wav; "--out"; dir; "--device"; "managed"; "--n-fft"; "512"; "--n-mels"; "64"; "--fmax"; "3000"; "--top-db"; "60" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                Expect.stringContains out "tone-mel.png" "the mel picture"
                let args = Argu.ArgumentParser.Create<Hybrid.Cli.PlotCommand.PlotArgs>(programName = "hybrid plot").ParseCommandLine [| wav; "--out"; dir; "--n-fft"; "512"; "--fmax"; "3000" |]
                let settings = Hybrid.Cli.PlotCommand.settingsOf args 8000
                Expect.equal (settings.Stft.NFft, settings.Stft.Hop, settings.Mel.FMaxOrNyquist) (512, 256, 3000.0) "n_fft, its default hop and fmax from the options"
                let code, _, err = run Hybrid.Cli.PlotCommand.run [ wav; "--out"; dir; "--device"; "managed"; "--fmax"; "5000" ]
                Expect.equal code 2 "an fmax above sr / 2 is a bad option"
                Expect.stringContains err "tone.wav (8000 Hz)" "the message names the file and its rate"
                Expect.stringContains err "fmax" "the message names the parameter")
        }
    ]
