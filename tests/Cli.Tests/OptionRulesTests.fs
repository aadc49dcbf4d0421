module Hybrid.CliTests.OptionRulesTests

open System
open System.IO
open Expecto
open Hybrid.Cli

let private commands : (string * (TextWriter -> TextWriter -> string[] -> int)) list =
    [ "features", FeaturesCommand.run; "train", TrainCommand.run; "dataset", DatasetCommand.run; "predict", PredictCommand.run
      "export", ExportCommand.run; "plot", PlotCommand.run; "bench", Bench.run
      "evaluate", EvaluateCommand.run ]

let private run (command: string) (args: string list) =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = (commands |> List.find (fst >> (=) command) |> snd) out err (Array.ofList args)
    code, out.ToString(), err.ToString()

/// A folder that does not exist: a command that reached the data would fail on it with exit code 1 ("folder not
/// found"), so exit code 2 with the option's message shows the refusal came before any data was read.
let private nowhere = Path.Combine(Path.GetTempPath(), "hybrid-no-such-dataset-" + Guid.NewGuid().ToString("N"))

let private features args = "features", [ "--data"; nowhere; "--out"; Path.Combine(nowhere, "x.npy") ] @ args
let private train args = "train", [ "--data"; nowhere ] @ args
let private dataset args = "dataset", [ "--data"; nowhere ] @ args

/// Every refused option or combination: the command line and what the message must name (the option, then its
/// range or the mode it needs).
let private refused =
    [ // features: numeric domains
      features [ "--schema"; "genre"; "--top-db"; "-1" ], [ "--top-db"; "> 0"; "was -1" ]
      features [ "--schema"; "genre"; "--top-db"; "0" ], [ "--top-db"; "> 0"; "was 0" ]
      features [ "--transform"; "logmel"; "--top-db"; "loud" ], [ "--top-db"; "or none" ]
      features [ "--transform"; "stft"; "--n-fft"; "1" ], [ "--n-fft"; "2..16384"; "was 1" ]
      features [ "--transform"; "stft"; "--hop-length"; "0" ], [ "--hop-length"; ">= 1" ]
      features [ "--transform"; "stft"; "--win-length"; "0" ], [ "--win-length"; ">= 1" ]
      features [ "--transform"; "stft"; "--window"; "kaiser" ], [ "--window"; "hann"; "was kaiser" ]
      features [ "--transform"; "stft"; "--pad-mode"; "wrap" ], [ "--pad-mode"; "constant, reflect, edge" ]
      features [ "--transform"; "stft"; "--power"; "0" ], [ "--power"; "(0, inf)" ]
      features [ "--transform"; "mel"; "--n-mels"; "0" ], [ "--n-mels"; ">= 1" ]
      features [ "--transform"; "mel"; "--fmin"; "-5" ], [ "--fmin"; "[0, inf)" ]
      features [ "--transform"; "mel"; "--fmax"; "0" ], [ "--fmax"; "(0, inf)" ]
      features [ "--transform"; "mel"; "--norm"; "l2" ], [ "--norm"; "slaney, none" ]
      features [ "--transform"; "mfcc"; "--n-mfcc"; "0" ], [ "--n-mfcc"; ">= 1" ]
      features [ "--transform"; "mfcc"; "--lifter"; "-1" ], [ "--lifter"; "[0, inf)" ]
      features [ "--transform"; "chroma"; "--tuning"; "0.5" ], [ "--tuning"; "[-0.5, 0.5)" ]
      features [ "--transform"; "scattering"; "--j"; "0" ], [ "--j"; "1..30" ]
      features [ "--transform"; "scattering"; "--j"; "14"; "--length"; "8192" ], [ "--j"; "1..13 (2^J at most --length 8192)"; "was 14" ]
      features [ "--transform"; "scattering"; "--j"; "8"; "--t"; "16384"; "--length"; "8192" ], [ "--t"; "a power of two in 1..8192" ]
      features [ "--transform"; "scattering"; "--j"; "6"; "--q"; "65" ], [ "--q"; "1..64" ]
      features [ "--transform"; "scattering"; "--j"; "6"; "--t"; "100" ], [ "--t"; "power of two" ]
      features [ "--transform"; "scattering"; "--j"; "6"; "--max-order"; "3" ], [ "--max-order"; "1..2" ]
      features [ "--schema"; "genre"; "--sr"; "0" ], [ "--sr"; ">= 1" ]
      features [ "--schema"; "genre"; "--length"; "0" ], [ "--length"; ">= 1" ]
      features [ "--schema"; "genre"; "--batch-size"; "0" ], [ "--batch-size"; ">= 1" ]
      features [ "--schema"; "genre"; "--device"; "gpu" ], [ "--device"; "auto, managed" ]
      features [ "--schema"; "genre"; "--split"; "loso" ], [ "--split"; "a single split" ]
      features [ "--schema"; "genre"; "--split"; "random:2" ], [ "--split"; "(0, 1)" ]
      features [ "--schema"; "genre"; "--split"; "official"; "--part"; "dev" ], [ "--part"; "train, validation, test, all" ]
      features [ "--schema"; "genre"; "--split"; "random:0.2"; "--seed"; "-1" ], [ "--seed"; ">= 0" ]
      // features: options their mode does not use
      features [ "--schema"; "scattering-fsdd"; "--n-fft"; "512" ], [ "--n-fft"; "reads n_fft"; "scattering-fsdd" ]
      features [ "--schema"; "mfcc-mean40"; "--tuning"; "0.1" ], [ "--tuning"; "--transform chroma" ]
      features [ "--transform"; "stft"; "--n-mels"; "40" ], [ "--n-mels"; "reads n_mels" ]
      features [ "--transform"; "mel"; "--top-db"; "60" ], [ "--top-db"; "reads top_db" ]
      features [ "--transform"; "centroid"; "--power"; "1" ], [ "--power"; "reads power" ]
      features [ "--transform"; "zcr"; "--window"; "hamming" ], [ "--window"; "reads window" ]
      features [ "--transform"; "scattering"; "--j"; "6"; "--n-fft"; "512" ], [ "--n-fft"; "--transform scattering reads --j" ]
      features [ "--transform"; "mel"; "--j"; "6" ], [ "--j"; "with --transform scattering" ]
      features [ "--transform"; "mel"; "--log-mean" ], [ "--log-mean"; "with --transform scattering" ]
      features [ "--schema"; "genre"; "--part"; "test" ], [ "--part"; "with --split" ]
      features [ "--schema"; "genre"; "--seed"; "3" ], [ "--seed"; "with --split random:RATIO" ]
      features [ "--schema"; "genre"; "--split"; "official"; "--seed"; "3" ], [ "--seed"; "with --split random:RATIO" ]
      features [ "--schema"; "mfcc-mean40"; "--n-mels"; "32" ], [ "--n-mfcc"; "n_mels = 32" ]
      // train: numeric domains
      train [ "--lr"; "-1" ], [ "--lr"; "(0, inf)"; "was -1" ]
      train [ "--pcen"; "yes" ], [ "--pcen"; "TIME_CONSTANT:GAIN:BIAS:POWER"; "was yes" ]
      train [ "--pcen"; "0:0.98:2:0.5" ], [ "--pcen"; "time constant > 0"; "was 0:0.98:2:0.5" ]
      train [ "--model"; "mlp"; "--pcen"; "true" ], [ "--pcen"; "applies only"; "reads pcen" ]
      features [ "--transform"; "mfcc"; "--pcen"; "true" ], [ "--pcen"; "applies only" ]
      train [ "--lr"; "0" ], [ "--lr"; "(0, inf)"; "was 0" ]
      train [ "--lr"; "NaN" ], [ "--lr"; "(0, inf)" ]
      train [ "--lr"; "Infinity" ], [ "--lr"; "(0, inf)" ]
      train [ "--epochs"; "0" ], [ "--epochs"; ">= 1" ]
      train [ "--batch-size"; "0" ], [ "--batch-size"; ">= 1" ]
      train [ "--validation"; "0" ], [ "--validation"; "(0, 1)" ]
      train [ "--validation"; "1" ], [ "--validation"; "(0, 1)" ]
      train [ "--early-stopping"; "0" ], [ "--early-stopping"; ">= 1" ]
      train [ "--seed"; "-1" ], [ "--seed"; ">= 0" ]
      train [ "--model"; "mlp"; "--features"; "genre"; "--sr"; "0" ], [ "--sr"; ">= 1" ]
      train [ "--sr"; "16000" ], [ "--sr"; "8000, the rate schema 'logmel-fsdd' is defined at" ]
      train [ "--model"; "mlp"; "--duration"; "0" ], [ "--duration"; "(0, 3600)" ]
      train [ "--model"; "mlp"; "--duration"; "NaN" ], [ "--duration"; "(0, 3600)" ]
      train [ "--segment"; "-1" ], [ "--segment"; "(0, 3600)" ]
      train [ "--segment"; "1"; "--segment-hop"; "2" ], [ "--segment-hop"; "(0, 1]" ]
      train [ "--segment"; "1"; "--segment-hop"; "0" ], [ "--segment-hop"; "(0, 1]" ]
      train [ "--n-fft"; "1" ], [ "--n-fft"; "2..16384" ]
      train [ "--n-mels"; "0" ], [ "--n-mels"; ">= 1" ]
      train [ "--model"; "mlp"; "--n-mfcc"; "0" ], [ "--n-mfcc"; ">= 1" ]
      train [ "--fmin"; "-1" ], [ "--fmin"; "[0, inf)" ]
      train [ "--fmax"; "0" ], [ "--fmax"; "(0, inf)" ]
      train [ "--split"; "kfold:1" ], [ "--split"; "K >= 2" ]
      train [ "--split"; "random:0" ], [ "--split"; "(0, 1)" ]
      train [ "--augment"; "snr:inf" ], [ "--augment"; "snr:DB" ]
      train [ "--augment"; "speed:0.1-3" ], [ "--augment"; "[0.25, 4]" ]
      train [ "--augment"; "noise:-1" ], [ "--augment"; "must not be negative" ]
      train [ "--augment-pool"; "0" ], [ "--augment-pool"; "1..64" ]
      train [ "--augment"; "none"; "--augment-pool"; "2" ], [ "--augment-pool"; "waveform augmentation"; "--augment none turns augmentation off" ]
      train [ "--augment"; "freq-mask:7"; "--augment-pool"; "3" ], [ "--augment-pool"; "--augment 'freq-mask:7' holds none" ]
      train [ "--model"; "mlp"; "--augment-pool"; "1" ], [ "--augment-pool"; "model 'mlp' has no augmentation of its own" ]
      train [ "--test-speeds"; "3" ], [ "--test-speeds"; "[0.5, 2]" ]
      train [ "--labels"; "," ], [ "--labels"; "class names" ]
      train [ "--device"; "gpu" ], [ "--device"; "auto, managed, cuda, opencl, ilgpu-cpu" ]
      // train: options their mode does not use
      train [ "--other-label"; "unknown" ], [ "--other-label"; "with --labels" ]
      train [ "--segment-hop"; "0.5" ], [ "--segment-hop"; "with --segment" ]
      train [ "--trim"; "20" ], [ "--trim"; "TOP_DB:FRAME_LENGTH:HOP_LENGTH" ]
      train [ "--trim"; "0:256:64" ], [ "--trim"; "top_db in (0, 120]" ]
      train [ "--top-db"; "-3" ], [ "--top-db"; "> 0"; "was -3" ]
      train [ "--model"; "scattering"; "--top-db"; "40" ], [ "--top-db"; "reads top_db" ]
      train [ "--label-map"; "zero" ], [ "--label-map"; "FROM=TO" ]
      train [ "--augment"; "reverb:0"; "--model"; "cnn2d" ], [ "--augment"; "reverberation times" ]
      train [ "--model"; "cnn2d"; "--features"; "logmel-fsdd"; "--duration"; "2" ], [ "--duration"; "any clip length, the model's own image features (environmental clips) or --segment" ]
      train [ "--model"; "scattering"; "--n-fft"; "512" ], [ "--n-fft"; "reads n_fft" ]
      train [ "--model"; "cnn2d"; "--n-mfcc"; "13" ], [ "--n-mfcc"; "reads n_mfcc" ]
      // train --resume: options given with it keep their domains (whether they agree with run.json is checked there)
      ("train", [ "--resume"; nowhere; "--epochs"; "0" ]), [ "--epochs"; ">= 1" ]
      ("train", [ "--resume"; nowhere; "--n-fft"; "1" ]), [ "--n-fft"; "2..16384" ]
      // dataset
      dataset [ "--seed"; "3" ], [ "--seed"; "with --split random:RATIO or kfold:K" ]
      dataset [ "--split"; "official"; "--seed"; "3" ], [ "--seed"; "with --split random:RATIO or kfold:K" ]
      dataset [ "--split"; "kfold:5"; "--seed"; "-2" ], [ "--seed"; ">= 0" ]
      dataset [ "--split"; "kfold:1" ], [ "--split"; "K >= 2" ]
      // predict, plot, bench
      ("predict", [ "--model"; Path.Combine(nowhere, "model.hnn"); "--device"; "tpu"; "a.wav" ]), [ "--device"; "auto, managed" ]
      ("plot", [ "--out"; nowhere; "--device"; "tpu"; "a.wav" ]), [ "--device"; "auto, managed" ]
      ("bench", [ "--runs"; "0" ]), [ "--runs"; ">= 1" ]
      ("bench", [ "--warmup"; "-1" ]), [ "--warmup"; ">= 0" ]
      ("bench", [ "--device"; "tpu" ]), [ "--device"; "all, auto, managed" ]
      ("bench", [ "--workload"; "w9" ]), [ "--workload"; "w1-logmel" ]
      // --threads: 1..4 x the logical processors on every command that takes it
      let limit = sprintf "1..%d" (Environment.ProcessorCount * 4)
      features [ "--schema"; "genre"; "--threads"; "0" ], [ "--threads"; limit; "was 0" ]
      train [ "--threads"; string (Environment.ProcessorCount * 4 + 1) ], [ "--threads"; limit ]
      ("predict", [ "--model"; Path.Combine(nowhere, "model.hnn"); "--threads"; "-1"; "a.wav" ]), [ "--threads"; limit; "was -1" ]
      ("evaluate", [ "--model"; Path.Combine(nowhere, "model.hnn"); "--data"; nowhere; "--threads"; "0" ]), [ "--threads"; limit ]
      ("bench", [ "--threads"; "0" ]), [ "--threads"; limit; "was 0" ]
      ("bench", [ "--threads"; "1,two" ]), [ "--threads"; "comma-separated list" ]
      ("bench", [ "--scaling"; "--threads"; "2" ]), [ "--scaling"; "not both" ]
      ("bench", [ "--scaling"; "--device"; "all" ]), [ "--device all"; "managed engine" ] ]

/// Command lines whose options all apply: they pass the table and fail only on the missing data folder, so the table
/// does not refuse what is used.
let private accepted =
    [ features [ "--transform"; "chroma"; "--tuning"; "0.1"; "--n-fft"; "1024" ]
      features [ "--transform"; "logmel"; "--top-db"; "none"; "--power"; "1"; "--htk" ]
      features [ "--transform"; "mfcc"; "--top-db"; "60"; "--lifter"; "22"; "--n-mfcc"; "13"; "--norm"; "none" ]
      features [ "--transform"; "rms"; "--n-fft"; "512"; "--pad-mode"; "reflect"; "--center"; "false" ]
      features [ "--transform"; "scattering"; "--j"; "6"; "--q"; "8"; "--t"; "64"; "--max-order"; "1"; "--log-mean" ]
      features [ "--schema"; "genre"; "--n-fft"; "1024"; "--split"; "random:0.2"; "--seed"; "4"; "--part"; "test" ]
      train [ "--model"; "mlp"; "--duration"; "2"; "--n-mfcc"; "20"; "--seed"; "1"; "--validation"; "0.2"; "--lr"; "0.01" ]
      train [ "--model"; "cnn2d"; "--pcen"; "true" ]
      train [ "--model"; "cnn2d"; "--pcen"; "0.06:0.8:10:0.25" ]
      features [ "--transform"; "logmel"; "--pcen"; "true" ]
      train [ "--model"; "cnn2d"; "--segment"; "2"; "--segment-hop"; "2"; "--duration"; "30"; "--sr"; "8000"; "--augment-pool"; "5" ]
      train [ "--labels"; "yes,no"; "--other-label"; "unknown"; "--augment"; "none"; "--test-speeds"; "0.9,1,1.1" ]
      train [ "--model"; "mlp"; "--augment"; "gain:6"; "--augment-pool"; "2" ]
      dataset [ "--split"; "kfold:5"; "--seed"; "3" ]
      ("train", [ "--resume"; nowhere; "--no-plots"; "--strict"; "--json" ])
      ("train", [ "--resume"; nowhere; "--epochs"; "3"; "--n-fft"; "512"; "--segment-hop"; "1"; "--other-label"; "rest" ]) ]

[<Tests>]
let tests =
    testList "OptionRules" [
        testList "every refused option or combination exits 2 before any data is read, naming the option and its range or mode" [
            for (command, args), expected in refused ->
                test (sprintf "%s %s" command (String.Join(" ", args |> List.filter (fun a -> a <> nowhere && not (a.StartsWith nowhere))))) {
                    let code, _, err = run command args
                    Expect.equal code 2 (sprintf "exit code 2 (stderr: %s)" err)
                    for e in expected do
                        Expect.stringContains err e "the message"
                    Expect.isFalse (err.Contains "not found") "refused before the data was looked for"
                }
        ]

        test "options used by the chosen mode pass the table and the command goes on to the data" {
            for command, args in accepted do
                let code, _, err = run command args
                Expect.notEqual code 0 (sprintf "%s %A: the missing data fails the command" command args)
                Expect.stringContains err nowhere (sprintf "%s %A: the message names the missing folder (stderr: %s)" command args err)
                Expect.isFalse (err.Contains "must be" || err.Contains "applies only") (sprintf "%s %A: no option refused (stderr: %s)" command args err)
        }

        test "a feature member reads only the parameters of its computation" {
            let m kind decibels =
                Hybrid.Features.Schemas.FeatureMember(Property = "x", Kind = kind, Statistic = Hybrid.Features.Schemas.Statistic.TimeSeries, Column = "x", Offset = 0, Width = 0, Rows = 1, Decibels = decibels)
            let reads kind decibels = List.ofSeq ((m kind decibels).ParametersRead())
            Expect.contains (reads Hybrid.Features.Schemas.FeatureKind.MelBands true) "top_db" "dB mel bands read top_db"
            Expect.isFalse (List.contains "top_db" (reads Hybrid.Features.Schemas.FeatureKind.MelBands false)) "power mel bands do not"
            Expect.isFalse (List.contains "power" (reads Hybrid.Features.Schemas.FeatureKind.SpectralCentroid false)) "the centroid's magnitude spectrogram has a fixed exponent"
            Expect.isEmpty (reads Hybrid.Features.Schemas.FeatureKind.Scattering false) "scattering reads no STFT or mel parameter"
            for kind in System.Enum.GetValues<Hybrid.Features.Schemas.FeatureKind>() do
                for name in (m kind true).ParametersRead() do
                    Expect.contains Hybrid.Features.Schemas.FeatureParameters.Names name (sprintf "%A reads %s, a feature parameter" kind name)
        }

        test "help lists the split forms each command's parser accepts" {
            for command in [ "train"; "dataset" ] do
                let code, out, _ = run command [ "--help" ]
                Expect.equal code 0 "exit code 0"
                for form in [ "official"; "speaker:NAME[,NAME]"; "loso"; "fold:K[,K]"; "folds"; "random:RATIO"; "kfold:K" ] do
                    Expect.stringContains out form (sprintf "%s --help lists %s" command form)
            let _, out, _ = run "features" [ "--help" ]
            for form in [ "loso"; "folds"; "kfold" ] do
                Expect.isFalse (out.Contains form) (sprintf "features --help does not list %s: it exports one split" form)
        }
    ]
