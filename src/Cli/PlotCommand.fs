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

/// The option table of `plot` (OptionRules): every option applies; --device must name an engine.
let private table (arg: PlotArgs) : OptionRules.Check list =
    match arg with
    | Out _ | File _ -> []
    | Device name -> [ OptionRules.engine name ]

/// Runs the command. Exit codes: 0 done; 1 the file could not be read; 2 bad options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    Command.run<PlotArgs> "plot" out error argv (fun args ->
        OptionRules.enforce args table
        let file = args.GetResult File
        let audio = AudioFile.read AudioFile.defaults file
        use engine = Engines.Create(args.GetResult(Device, defaultValue = "auto"), fun l -> error.WriteLine("plot: " + l))
        let name = nonNull (Path.GetFileNameWithoutExtension file)
        for path, caption in AudioPlots.plotClip engine (args.GetResult Out) name name audio.SampleRate audio.Samples.[0] do
            out.WriteLine(sprintf "plot: wrote %s (%s)" path caption)
        0)
