/// The options of `hybrid features` (librosa's parameter names in kebab case), their rules (OptionRules) and the
/// settings they give: FeaturesCommand turns them into a FeatureExport request.
module Hybrid.Cli.FeaturesOptions

open System
open Argu
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas

/// The options of `features` (librosa's parameter names in kebab case).
type FeaturesArgs =
    | Data of dir: string
    | [<Mandatory>] Out of file: string
    | Schema of name: string
    | Transform of name: string
    | Sr of hz: int
    | N_Fft of n: int
    | Hop_Length of n: int
    | Win_Length of n: int
    | Window of name: string
    | Center of bool
    | Pad_Mode of mode: string
    | N_Mels of n: int
    | Fmin of hz: float
    | Fmax of hz: float
    | Htk
    | Norm of name: string
    | Power of p: float
    | Top_Db of db: string
    | Pcen of spec: string
    | N_Mfcc of n: int
    | Lifter of l: float
    | J of j: int
    | Q of q: int
    | T of t: int
    | Max_Order of order: int
    | Log_Mean
    | Tuning of bins: float
    | Length of samples: int
    | Device of name: string
    | Threads of count: int
    | Split of spec: string
    | Part of name: string
    | Seed of seed: int
    | Batch_Size of n: int
    | Cache of dir: string
    | Strict
    | Json
    | Cluster of gateway: string
    | Certificate of file: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Data _ -> "dataset folder or manifest (default: FSDD from $HYBRID_FSDD or the user cache, downloaded when absent); `fsdd` or `speech-commands` names a set downloaded into the user cache and verified."
            | Out _ -> "output file: .csv, .parquet or .npy (the .npy gets a .files.txt sidecar listing files in row order)."
            | Schema _ -> sprintf "predefined schema: %s." (String.Join(", ", Schemas.Names))
            | Transform _ -> sprintf "transform: %s." (Transforms.kindNames |> List.map fst |> String.concat ", ")
            | Sr _ -> "sampling rate in Hz (default: the schema's; for transforms the dataset's first item's rate); recordings are resampled to it."
            | N_Fft _ -> "FFT length (default 2048)."
            | Hop_Length _ -> "hop length (default n_fft / 4)."
            | Win_Length _ -> "window length (default n_fft)."
            | Window _ -> "hann, hamming, blackman or rectangular (default hann)."
            | Center _ -> "centre frames by padding n_fft/2 on both sides (default true)."
            | Pad_Mode _ -> "constant, reflect or edge (default constant)."
            | N_Mels _ -> "mel bands (default 128)."
            | Fmin _ -> "lowest mel frequency in Hz (default 0)."
            | Fmax _ -> "highest mel frequency in Hz (default sr / 2)."
            | Htk -> "use the HTK mel formula instead of Slaney's."
            | Norm _ -> "mel filter norm: slaney or none (default slaney)."
            | Power _ -> "exponent applied to the magnitude spectrogram, any number > 0 as librosa's power: 1 magnitude, 2 power (default)."
            | Top_Db _ -> "dynamic range kept below each clip's maximum in dB, > 0, or none to keep everything (default 80)."
            | Pcen _ -> "per-channel energy normalisation (librosa.pcen) of dB mel bands instead of power_to_db, on the mel spectrogram scaled by 2^31: none, true (librosa's defaults, 0.4:0.98:2:0.5) or TIME_CONSTANT:GAIN:BIAS:POWER (default none)."
            | N_Mfcc _ -> "MFCC count (default 20)."
            | Lifter _ -> "MFCC lifter (default 0: none)."
            | J _ -> "scattering: log2 of the largest wavelet scale (required with --transform scattering; 2^J at most --length)."
            | Q _ -> "scattering: first-order wavelets per octave (default 1)."
            | T _ -> "scattering: averaging scale in samples, a power of two up to --length (default 2^J)."
            | Max_Order _ -> "scattering: 1 or 2 (default 2)."
            | Log_Mean -> "scattering: write the time-averaged log-scattering log(|S| + 1e-6) without order 0, [clips, paths - 1], instead of [clips, paths, frames]."
            | Tuning _ -> "--transform chroma: tuning in fractions of a bin, in [-0.5, 0.5) (default: estimated per recording, as librosa's chroma_stft)."
            | Length _ -> "clip length in samples: zero-padded or cut keeping the content centred (default: the schema's; whole recordings for schemas that take any length; for transforms the longest recording)."
            | Device _ -> "auto, managed, cuda, opencl or ilgpu-cpu (default auto)."
            | Threads _ -> "threads one parallel step may use, 1..4 x the logical processors (default: all of them): the managed engine, feature extraction and loading, training."
            | Split _ -> "split to select a part from (one test part): official | speaker:NAME[,NAME] | fold:K[,K] | random:RATIO (RATIO in (0, 1))."
            | Part _ -> "with --split: train, validation, test or all (default all)."
            | Seed _ -> "with --split random:RATIO: seed of the random split (default 0)."
            | Batch_Size _ -> "clips per extraction batch (default: 256, fewer for long clips so that a batch holds at most 2^24 samples, e.g. 25 tracks of 30 s at 22,050 Hz)."
            | Cache _ -> "feature cache folder: rows are stored in Parquet feature shards keyed by the schema/transform fingerprint and each file's relative path, size and modification time, so a second run over the same recordings skips extraction."
            | Strict -> "fail on the first unusable or truncated file instead of skipping it or warning about it."
            | Json -> "print a JSON summary line at the end."
            | Cluster _ -> "with --cache and --schema (and any of its run-time parameters, e.g. --n-mels): extract the missing feature shards on the Orleans cluster whose silo gateway is HOST:PORT (the dataset and cache folders must be on storage every silo sees; see docs/scale-out.md)."
            | Certificate _ -> "with --cluster: PKCS#12 certificate for TLS to a non-loopback cluster (password from $HYBRID_CERTIFICATE_PASSWORD)."

let private parseWindow (name: string) =
    match name.ToLowerInvariant() with
    | "hann" | "hanning" -> WindowKind.Hann
    | "hamming" -> WindowKind.Hamming
    | "blackman" -> WindowKind.Blackman
    | "rectangular" | "boxcar" | "ones" -> WindowKind.Rectangular
    | other -> invalidArg "window" (sprintf "unknown window '%s'; expected hann, hamming, blackman or rectangular" other)

let private parsePadMode (name: string) =
    match name.ToLowerInvariant() with
    | "constant" -> PadMode.Constant
    | "reflect" -> PadMode.Reflect
    | "edge" -> PadMode.Edge
    | other -> invalidArg "pad-mode" (sprintf "unknown pad mode '%s'; expected constant, reflect or edge" other)

let private parseNorm (name: string) =
    match name.ToLowerInvariant() with
    | "slaney" -> MelNorm.Slaney
    | "none" -> MelNorm.None
    | other -> invalidArg "norm" (sprintf "unknown mel norm '%s'; expected slaney or none" other)

/// Builds transform settings from the options (librosa defaults where an option is absent).
let settingsOf (args: ParseResults<FeaturesArgs>) (sampleRate: int) : Transforms.Settings =
    let nFft = args.GetResult(N_Fft, defaultValue = 2048)
    let stft =
        StftConfig(
            NFft = nFft,
            HopLength = (args.TryGetResult Hop_Length |> Option.toNullable),
            WinLength = (args.TryGetResult Win_Length |> Option.toNullable),
            Window = (args.TryGetResult Window |> Option.map parseWindow |> Option.defaultValue WindowKind.Hann),
            Center = args.GetResult(Center, defaultValue = true),
            PadMode = (args.TryGetResult Pad_Mode |> Option.map parsePadMode |> Option.defaultValue PadMode.Constant))
    let mel =
        MelConfig(
            SampleRate = sampleRate,
            NMels = args.GetResult(N_Mels, defaultValue = 128),
            FMin = args.GetResult(Fmin, defaultValue = 0.0),
            FMax = (args.TryGetResult Fmax |> Option.toNullable),
            Htk = args.Contains Htk,
            Norm = (args.TryGetResult Norm |> Option.map parseNorm |> Option.defaultValue MelNorm.Slaney))
    let topDb = args.TryGetResult Top_Db |> Option.map OptionRules.topDbOf |> Option.defaultValue (Some 80.0)
    { Transforms.defaults sampleRate with
        Stft = stft
        Power = args.GetResult(Power, defaultValue = 2.0)
        Mel = mel
        TopDb = topDb
        NMfcc = args.GetResult(N_Mfcc, defaultValue = 20)
        Lifter = args.GetResult(Lifter, defaultValue = 0.0)
        Scattering =
            ScatteringConfig(
                args.GetResult(J, defaultValue = 8),
                args.GetResult(Q, defaultValue = 1),
                (args.TryGetResult T |> Option.toNullable),
                args.GetResult(Max_Order, defaultValue = 2))
        LogMean = args.Contains Log_Mean

        Tuning = args.TryGetResult Tuning }

/// A schema's run-time variant from the feature options given (librosa's names; see Extraction.variant): every
/// option given changes the schema, none is ignored.
let overridesOf (args: ParseResults<FeaturesArgs>) : Extraction.Overrides =
    let text (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)
    { Extraction.noOverrides with
        Sr = args.TryGetResult Sr
        ClipSamples = args.TryGetResult Length
        NFft = args.TryGetResult N_Fft
        HopLength = args.TryGetResult Hop_Length
        WinLength = args.TryGetResult Win_Length
        NMels = args.TryGetResult N_Mels
        FMin = args.TryGetResult Fmin
        FMax = args.TryGetResult Fmax
        NMfcc = args.TryGetResult N_Mfcc
        Other =
            [ match args.TryGetResult Window with Some w -> "window", (string (parseWindow w)).ToLowerInvariant() | None -> ()
              match args.TryGetResult Center with Some c -> "center", (if c then "true" else "false") | None -> ()
              match args.TryGetResult Pad_Mode with Some m -> "pad_mode", (string (parsePadMode m)).ToLowerInvariant() | None -> ()
              if args.Contains Htk then "htk", "true"
              match args.TryGetResult Norm with Some n -> "norm", (string (parseNorm n)).ToLowerInvariant() | None -> ()
              match args.TryGetResult Power with Some p -> "power", text p | None -> ()
              match args.TryGetResult Top_Db |> Option.map OptionRules.topDbOf with Some t -> "top_db", (t |> Option.map text |> Option.defaultValue "none") | None -> ()
              match args.TryGetResult Lifter with Some l -> "lifter", text l | None -> ()
              match args.TryGetResult Pcen with Some v -> "pcen", OptionRules.pcenText v | None -> () ] }

/// What the command line chose, which decides the options that apply (OptionRules).
type internal Mode =
    { /// The schema whose members read the feature options: a --schema's declaration, or the one-member schema of a
      /// --transform (laid out at librosa's defaults only to know its member); None for the scattering transform,
      /// which reads none of the STFT and mel options.
      Members: FeatureSchemaInfo option
      /// --transform scattering.
      Scattering: bool
      /// --transform chroma.
      Chroma: bool
      /// --split was given.
      SplitGiven: bool
      /// --split, parsed (None when absent or not a valid split, which its own entry refuses).
      Split: SplitSpec option
      /// --cluster given; ClusterReady: with --cache and --schema (the workers extract that schema, or its run-time
      /// variant, into the cache).
      Cluster: bool
      ClusterReady: bool
      /// --length in samples, when given (bounds the scattering scales: 2^J and T at most the clip length).
      Length: int option }

let private windows = [ "hann"; "hanning"; "hamming"; "blackman"; "rectangular"; "boxcar"; "ones" ]

/// The option table of `features`: each option's domain and the modes that use it.
let internal table (mode: Mode) (arg: FeaturesArgs) : OptionRules.Check list =
    let open' = OptionRules.UsedOnly
    let uses name =
        match mode.Members with
        | Some schema -> OptionRules.usedBySchema schema name
        | None -> open'(false, sprintf "to schemas and transforms that read %s; --transform scattering reads --j, --q, --t, --max-order and --log-mean" name)
    let scattering = open'(mode.Scattering, "with --transform scattering")
    match arg with
    | Data _ | Out _ | Schema _ | Transform _ | Cache _ | Strict | Json -> []
    | Cluster _ ->
        [ open'(mode.ClusterReady, "with --cache DIR and --schema NAME (the workers write that schema's feature shards into the cache)") ]
    | Certificate _ -> [ open'(mode.Cluster, "with --cluster HOST:PORT (TLS to that cluster)") ]
    | Device name -> [ OptionRules.engine name ]
    | Threads n -> [ OptionRules.threads n ]
    | Sr hz -> [ OptionRules.atLeast 1 hz ]
    | Length n -> [ OptionRules.atLeast 1 n ]
    | Batch_Size n -> [ OptionRules.atLeast 1 n ]
    | N_Fft n -> [ OptionRules.within 2 16384 n; uses "n_fft" ]
    | Hop_Length n -> [ OptionRules.atLeast 1 n; uses "hop_length" ]
    | Win_Length n -> [ OptionRules.atLeast 1 n; uses "win_length" ]
    | Window name -> [ OptionRules.oneOf windows name; uses "window" ]
    | Center _ -> [ uses "center" ]
    | Pad_Mode name -> [ OptionRules.oneOf [ "constant"; "reflect"; "edge" ] name; uses "pad_mode" ]
    | N_Mels n -> [ OptionRules.atLeast 1 n; uses "n_mels" ]
    | Fmin hz -> [ OptionRules.nonNegative " Hz" hz; uses "fmin" ]
    | Fmax hz -> [ OptionRules.positive " Hz" hz; uses "fmax" ]
    | Htk -> [ uses "htk" ]
    | Norm name -> [ OptionRules.oneOf [ "slaney"; "none" ] name; uses "norm" ]
    | Power p -> [ OptionRules.positive "" p; uses "power" ]
    | Top_Db value -> [ OptionRules.topDbDomain value; uses "top_db" ]
    | Pcen value -> [ OptionRules.pcenDomain value; uses "pcen" ]
    | N_Mfcc n -> [ OptionRules.atLeast 1 n; uses "n_mfcc" ]
    | Lifter l -> [ OptionRules.nonNegative "" l; uses "lifter" ]
    | J j ->
        let domain =
            match mode.Length with
            | Some n when n >= 2 ->
                let most = int (Math.Floor(Math.Log2(float n)))
                OptionRules.InDomain(j >= 1 && j <= most, sprintf "an integer in 1..%d (2^J at most --length %d)" most n, string j)
            | _ -> OptionRules.within 1 30 j
        [ domain; scattering ]
    | Q q -> [ OptionRules.within 1 64 q; scattering ]
    | T t ->
        let power = t >= 1 && (t &&& (t - 1)) = 0
        let domain =
            match mode.Length with
            | Some n -> OptionRules.InDomain(power && t <= n, sprintf "a power of two in 1..%d (at most --length)" n, string t)
            | None -> OptionRules.InDomain(power, "a power of two >= 1", string t)
        [ domain; scattering ]
    | Max_Order o -> [ OptionRules.within 1 2 o; scattering ]
    | Log_Mean -> [ scattering ]
    | Tuning bins ->
        [ OptionRules.InDomain(bins >= -0.5 && bins < 0.5, "a number of bins in [-0.5, 0.5)", OptionRules.text bins)
          open'(mode.Chroma, "with --transform chroma (a schema keeps its declared tuning)") ]
    | Split text ->
        [ OptionRules.split "a single split: official, speaker:NAME[,NAME], fold:K[,K] or random:RATIO with RATIO in (0, 1)"
              (function Official | HoldOutSpeakers _ | PredefinedFold _ | StratifiedRandom _ -> true | _ -> false) text ]
    | Part name -> [ open'(mode.SplitGiven, "with --split (it selects a part of the split)"); OptionRules.oneOf [ "train"; "validation"; "test"; "all" ] name ]
    | Seed seed ->
        [ open'((match mode.Split with Some (StratifiedRandom _) -> true | _ -> false), "with --split random:RATIO (the one split it draws)")
          OptionRules.atLeast 0 seed ]


/// The mode the options choose (the transform's kind already parsed).
let internal modeOf (args: ParseResults<FeaturesArgs>) (kind: Transforms.Kind option) : Mode =
    { Members =
        match args.TryGetResult Schema |> Option.map Schemas.ByName, kind with
        | Some schema, _ -> Some schema
        | None, Some Transforms.Scattering -> None
        | None, Some k -> Some(Transforms.schema (Transforms.defaults 22050) k 22050)
        | None, None -> None
      Scattering = (kind = Some Transforms.Scattering)
      Chroma = (kind = Some Transforms.Chroma)
      SplitGiven = args.Contains Split
      Split = args.TryGetResult Split |> Option.bind (fun text -> try Some(Split.parse text) with :? DatasetException -> None)
      Cluster = args.Contains Cluster
      ClusterReady = args.Contains Cache && args.Contains Schema
      Length = args.TryGetResult Length }
