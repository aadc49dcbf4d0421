/// `hybrid plot`: the example plots (waveform, spectrogram, mel spectrogram, MFCC) of any recording.
module Hybrid.Cli.PlotCommand

open System
open System.IO
open Argu
open Hybrid.Dsp
open Hybrid.Features

/// The options of `plot`.
type PlotArgs =
    | [<Mandatory>] Out of dir: string
    | Device of name: string
    | [<MainCommand; ExactlyOnce>] File of path: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Out _ -> "folder receiving the PNG files."
            | Device _ -> "auto (default), managed, cuda, opencl or ilgpu-cpu."
            | File _ -> "WAV file to plot (mixed to mono)."

/// Runs the command. Exit codes: 0 done; 1 the file could not be read; 2 bad options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    let parser = ArgumentParser.Create<PlotArgs>(programName = "hybrid plot")
    try
        let args = parser.ParseCommandLine(argv, raiseOnUsage = true)
        let file = args.GetResult File
        let audio = Wav.readMono file
        use engine = Engines.Create(args.GetResult(Device, defaultValue = "auto"), fun l -> error.WriteLine("plot: " + l))
        let name = nonNull (Path.GetFileNameWithoutExtension file)
        for path, caption in AudioPlots.plotClip engine (args.GetResult Out) name name audio.SampleRate audio.Samples.[0] do
            out.WriteLine(sprintf "plot: wrote %s (%s)" path caption)
        0
    with
    | :? ArguParseException as e when e.ErrorCode = ErrorCode.HelpText ->
        out.WriteLine(parser.PrintUsage())
        0
    | :? ArguParseException as e ->
        error.WriteLine e.Message
        2
    | :? AudioFormatException as e ->
        error.WriteLine(sprintf "plot: %s" e.Message)
        1
    | :? FileNotFoundException as e ->
        error.WriteLine(sprintf "plot: %s" e.Message)
        1
