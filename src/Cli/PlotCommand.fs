/// `hybrid plot`: the example plots (waveform, spectrogram, mel spectrogram, MFCC, chroma) of any recording, with
/// librosa.display's axes (seconds, Hz) and librosa's analysis parameters as options.
module Hybrid.Cli.PlotCommand

open System
open System.IO
open Argu
open Hybrid.Dsp
open Hybrid.Features

/// The options of `plot` (librosa's parameter names in kebab case).
type PlotArgs =
    | [<Mandatory>] Out of dir: string
    | Device of name: string
    | N_Fft of n: int
    | Hop_Length of n: int
    | N_Mels of n: int
    | Fmin of hz: float
    | Fmax of hz: float
    | N_Mfcc of n: int
    | Top_Db of db: string
    | [<MainCommand; ExactlyOnce>] File of path: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Out _ -> "folder receiving the PNG files."
            | Device _ -> "auto (default), managed, cuda, opencl or ilgpu-cpu."
            | N_Fft _ -> "FFT length (default: 256 at 8 kHz and below, else the power of two nearest to 2048 * sr / 22050, e.g. 8192 at 96 kHz)."
            | Hop_Length _ -> "hop length in samples (default n_fft / 2 at 8 kHz and below, else n_fft / 4)."
            | N_Mels _ -> "mel bands (default 40 at 8 kHz and below, else 128)."
            | Fmin _ -> "lowest mel frequency in Hz (default 0)."
            | Fmax _ -> "highest mel frequency in Hz, also the top of the spectrogram's frequency axis (default: mel bands up to sr / 2; the spectrogram up to its content, see README)."
            | N_Mfcc _ -> "MFCC count (default 13)."
            | Top_Db _ -> "dynamic range shown below each picture's maximum in dB, > 0, or none (default 80)."
            | File _ -> "WAV file to plot (mixed to mono)."

/// The option table of `plot` (OptionRules): every option applies; each must be in its domain.
let private table (arg: PlotArgs) : OptionRules.Check list =
    match arg with
    | Out _ | File _ -> []
    | Device name -> [ OptionRules.engine name ]
    | N_Fft n -> [ OptionRules.within 2 65536 n ]
    | Hop_Length n | N_Mels n | N_Mfcc n -> [ OptionRules.atLeast 1 n ]
    | Fmin hz -> [ OptionRules.nonNegative " Hz" hz ]
    | Fmax hz -> [ OptionRules.positive " Hz" hz ]
    | Top_Db value -> [ OptionRules.topDbDomain value ]

/// The analysis settings of a recording at `sampleRate` Hz: AudioPlots.settingsFor with the options given.
let settingsOf (args: ParseResults<PlotArgs>) (sampleRate: int) : Transforms.Settings =
    let d = AudioPlots.settingsFor sampleRate
    let nFft = args.GetResult(N_Fft, defaultValue = d.Stft.NFft)
    let hop = args.GetResult(Hop_Length, defaultValue = (if args.Contains N_Fft then nFft / (d.Stft.NFft / d.Stft.Hop) else d.Stft.Hop))
    { d with
        Stft = StftConfig(NFft = nFft, HopLength = max 1 hop)
        Mel =
            MelConfig(
                SampleRate = sampleRate, NMels = args.GetResult(N_Mels, defaultValue = d.Mel.NMels),
                FMin = args.GetResult(Fmin, defaultValue = d.Mel.FMin), FMax = (args.TryGetResult Fmax |> Option.toNullable))
        NMfcc = args.GetResult(N_Mfcc, defaultValue = d.NMfcc)
        TopDb = args.TryGetResult Top_Db |> Option.map OptionRules.topDbOf |> Option.defaultValue d.TopDb }

/// Runs the command. Exit codes: 0 done; 1 the file could not be read; 2 bad options (including settings that do
/// not fit the recording's rate, e.g. --fmax above sr / 2).
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    Command.run<PlotArgs> "plot" out error argv (fun args ->
        OptionRules.enforce args table
        let file = args.GetResult File
        let audio = AudioFile.read AudioFile.defaults file
        let settings = settingsOf args audio.SampleRate
        use engine = Engines.Create(args.GetResult(Device, defaultValue = "auto"), fun l -> error.WriteLine("plot: " + l))
        let name = nonNull (Path.GetFileNameWithoutExtension file)
        let plots =
            try AudioPlots.plotClip engine (args.GetResult Out) name name settings audio.Samples.[0]
            with :? ArgumentException as e ->
                // A setting that does not fit this recording (e.g. --fmax above its sr / 2): name the file and its rate.
                raise (ArgumentException(sprintf "%s (%d Hz): %s" file audio.SampleRate (e.Message.Replace("Feature schema 'plots': ", "")), e))
        for path, caption in plots do
            out.WriteLine(sprintf "plot: wrote %s (%s)" path caption)
        0)
