/// `hybrid train`: the main job. Loads a dataset (FSDD by default, downloaded when absent), splits it, extracts
/// features, trains the chosen model, evaluates it and leaves the model file, metrics, plots and report.html.
module Hybrid.Cli.TrainCommand

open System
open System.IO
open System.Text.Json
open Argu
open Hybrid.Classifier
open Hybrid.Features

/// The options of `train`.
type TrainArgs =
    | Data of dir: string
    | Label_Map of map: string
    | Split of spec: string
    | Model of name: string
    | Features of schema: string
    | N_Fft of n: int
    | Hop_Length of n: int
    | N_Mels of n: int
    | Fmin of hz: float
    | Fmax of hz: float
    | N_Mfcc of n: int
    | Top_Db of db: string
    | Pcen of spec: string
    | Epochs of n: int
    | Batch_Size of n: int
    | Lr of rate: float
    | Augment of list: string
    | Augment_Pool of versions: int
    | Test_Speeds of list: string
    | Labels of list: string
    | Other_Label of name: string
    | Validation of ratio: float
    | Early_Stopping of patience: int
    | Class_Weight of mode: string
    | Refit
    | Sr of hz: int
    | Duration of seconds: float
    | Segment of seconds: float
    | Segment_Hop of seconds: float
    | Trim of spec: string
    | Per_Utterance of mode: string
    | Loudness of dbfs: float
    | Noise of dir: string
    | Resume of dir: string
    | Device of name: string
    | Threads of count: int
    | Seed of seed: int
    | Out of dir: string
    | Force
    | No_Plots
    | Strict
    | Json
    | Cluster of gateway: string
    | Workers of n: int
    | Certificate of file: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Data _ -> "dataset folder or CSV manifest: FSDD, one folder per class (GTZAN), a manifest (UrbanSound8K's metadata/UrbanSound8K.csv is found) or Speech Commands (default: FSDD from $HYBRID_FSDD or the user cache, downloaded when absent); `fsdd` or `speech-commands` names a set downloaded into the user cache and verified. Repeat to train on several datasets at once: each keeps its own split and speakers, test accuracy is reported per dataset."
            | Label_Map _ -> "read the datasets' labels as other names: FROM=TO,... applied to every dataset that has FROM (e.g. zero=0,one=1,...,nine=9 puts Speech Commands' digit words on FSDD's labels); --labels then selects among the mapped names."
            | Split _ -> "official | speaker:NAME[,NAME] | loso | fold:K[,K] | folds | random:RATIO | kfold:K (default: the dataset's own: official for FSDD and Speech Commands, folds for predefined folds, else random:0.2)."
            | Model _ -> sprintf "model: %s (default %s)." (Recipes.all |> List.map (fun r -> r.Name) |> String.concat ", ") (List.head Recipes.all).Name
            | Features _ -> "feature schema (default: the model's own; see `features --help` for the names)."
            | N_Fft _ -> "FFT length of a run-time variant of the schema (default: the model's for its own schema, 512 for cnn2d, else the schema's; hop and window lengths declared as librosa's defaults follow it)."
            | Hop_Length _ -> "hop length of the schema variant (default: the schema's, or n_fft / 4 when the schema uses librosa's default)."
            | N_Mels _ -> "mel bands of the schema variant (default: the schema's)."
            | Fmin _ -> "lowest mel frequency in Hz of the schema variant (default: the schema's)."
            | Fmax _ -> "highest mel frequency in Hz of the schema variant (default: the schema's)."
            | N_Mfcc _ -> "MFCC count of the schema variant's MFCC members (default: the schema's)."
            | Top_Db _ -> "dynamic range in dB kept below each clip's maximum by the schema variant's dB members, > 0, or none (default: the schema's, 80 for librosa's)."
            | Pcen _ -> "per-channel energy normalisation (librosa.pcen) of the mel bands instead of power_to_db, on the mel spectrogram scaled by 2^31: none, true (librosa's defaults, 0.4:0.98:2:0.5) or TIME_CONSTANT:GAIN:BIAS:POWER (seconds, then gain, bias and power) (default: none; predict replays it)."
            | Epochs _ -> "training epochs (default: the model's)."
            | Batch_Size _ -> "mini-batch size (default: the model's); above a fold's training rows (windows x recordings, plus augmented copies) it is clamped to them, with a log line."
            | Lr _ -> "peak learning rate of the one-cycle schedule (default: the model's)."
            | Augment _ -> "augmentation list: waveform noise:0.005,shift:0.1,gain:6,speed:0.9-1.1,snr:20,background:10-30,reverb:0.1-0.6 and SpecAugment masks of 2-D features freq-mask:BANDS,time-mask:FRAMES (repeat for more masks; 'none' for none; default: the model's)."
            | Augment_Pool _ -> "how many augmented versions (1..64) of each training clip to extract; every epoch draws each clip's augmented row afresh from them (1: the same copy every epoch). Only with waveform augmentation (refused for mlp, logreg and scattering unless --augment adds some). Default: the model's, 3 for cnn2d, 1 for cnn1d; each version costs one more extraction. With --cluster the workers train on each clip's first version only."
            | Test_Speeds _ -> "test-time speed averaging: none, F[*W],... or LO-HI:STEP[:tri], e.g. 0.7-1.3:0.05:tri (default: the model's; predict replays it)."
            | Labels _ -> "keep these classes, e.g. yes,no,up,down,left,right,on,off,stop,go (default: all)."
            | Other_Label _ -> "with --labels: fold every other class into one class of this name, e.g. unknown."
            | Validation _ -> "share of the training part held out for validation when the dataset has no validation list (default 0.1; grouped by speaker when there are enough speakers)."
            | Early_Stopping _ -> "stop after this many epochs without a lower validation loss and keep the best epoch's weights."
            | Class_Weight _ -> "weigh each class's training loss (Keras' class_weight): none (default) or balanced, n_rows / (n_classes * rows of the class) over each fold's training rows (scikit-learn's 'balanced'), for unbalanced data; validation and test metrics are unweighted. Not with --cluster."
            | Refit -> "with a cross-validation split (folds, loso, kfold:K): after the folds, train once more on every recording with the same settings (the run's epochs, or the rounded mean of the folds' best epochs with --early-stopping; no validation part) and write model.hnn beside the fold models."
            | Sr _ -> "resample every recording to this rate in Hz (default: the feature schema's; a schema defined at a rate takes only that one)."
            | Duration _ -> "for schemas that take any length, and the default image of environmental clips (median 2-5 s): pad or cut clips to this many seconds, in (0, 3600) (default: the longest clip, at most 5 s); with --segment, cut recordings to it first."
            | Segment _ -> "cut recordings into windows of this many seconds; predictions are averaged per recording (default: the schema's clip, half overlapping, when the median recording is over 2 s and 1.5 clips long)."
            | Segment_Hop _ -> "with --segment: seconds between window starts, in (0, --segment] (default: half a window)."
            | Loudness _ -> "scale every recording (after trimming) to this RMS level in dBFS, in [-100, 0], at training and prediction time (default: kept at its level; predict replays it)."
            | Noise _ -> "folder of background-noise recordings mixed in by background:DB augmentation (with the dataset's own _background_noise_); snr:DB then mixes them instead of white noise."
            | Per_Utterance _ -> "per-utterance normalisation of [bands, frames] features before the train-fitted standardisation: none, mean (each band's mean over the clip removed) or meanvar (and its deviation scaled to 1, CMVN) (default: the model's, mean for cnn2d; predict replays it)."
            | Trim _ -> "silence trimming of every recording before it is cut into clips, at training and prediction time (librosa.effects.trim): none or TOP_DB:FRAME_LENGTH:HOP_LENGTH in samples at the model's rate, e.g. 30:256:64 (default: every model trims recordings of at most 2 s, the median, at top_db 20 over 32 ms frames every 8 ms, 20:256:64 at 8 kHz; predict replays it)."
            | Resume _ -> "continue the interrupted run in this folder from its checkpoints, with the settings of its run.json (feature parameters included); an option given with it must repeat the recorded value."
            | Device _ -> "auto (default), managed, cuda, opencl or ilgpu-cpu."
            | Threads _ -> "threads one parallel step may use, 1..4 x the logical processors (default: all of them): the managed engine, feature extraction and loading, training."
            | Seed _ -> "seed of splits, augmentation, initialisation and shuffles, >= 0 (default 0)."
            | Out _ -> "output folder (default: a new folder under runs/). A folder that already holds a run (model.hnn, run.json or checkpoints) is refused unless --force overwrites it or --resume continues it. Feature shards are cached in the folder 'cache' beside it (runs/cache by default), shared by the runs there; delete it to recompute."
            | Force -> "with --out: overwrite the run already in that folder (its model files, run.json and checkpoints are replaced)."
            | No_Plots -> "skip the PNG plots and report.html (model, metrics.json and confusion CSV are still written)."
            | Strict -> "fail on the first unusable or truncated recording instead of skipping it or warning about it."
            | Json -> "end the output with one JSON line of results."
            | Cluster _ -> "train on the Orleans cluster whose silo gateway is HOST:PORT (data-parallel over --workers replicas; the run folder must be on storage every silo sees; see docs/scale-out.md)."
            | Workers _ -> "with --cluster: model replicas (worker grains), spread one per silo (default 2)."
            | Certificate _ -> "with --cluster: PKCS#12 certificate for TLS to a non-loopback cluster (password from $HYBRID_CERTIFICATE_PASSWORD)."

/// The closing JSON line: split, model, device, sizes, accuracy, timings, per-fold results.
let summaryJson (r: RunResult) =
    let perSpeaker =
        if r.Split = "loso" then
            box (dict [ for f in r.Folds -> f.Name, f.TestAccuracy ])
        else null
    JsonSerializer.Serialize(
        {| split = r.Split; model = r.Model; features = r.Features; device = r.Device; labels = r.Labels; clips = r.Clips
           n_train = (r.Folds |> List.sumBy (fun f -> f.NTrain)) / r.Folds.Length
           n_validation = (r.Folds |> List.sumBy (fun f -> f.NValidation)) / r.Folds.Length
           n_test = r.Folds |> List.sumBy (fun f -> f.NTest)
           test_accuracy = r.TestAccuracy
           test_accuracy_std = r.TestAccuracyStd
           test_speeds = TestSpeeds.format r.TestSpeeds
           class_weight = ClassWeighting.format r.ClassWeight
           folds = [ for f in r.Folds -> {| name = f.Name; n_train = f.NTrain; n_validation = f.NValidation; n_test = f.NTest; test_accuracy = f.TestAccuracy
                                            train_accuracy = f.TrainAccuracy; validation_accuracy = Option.toNullable f.ValidationAccuracy
                                            best_epoch = Option.toNullable f.BestEpoch; resumed_after_epochs = f.ResumedAfterEpochs
                                            per_source = [ for name, n, accuracy in f.PerSource -> {| source = name; n_test = n; test_accuracy = accuracy |} ] |} ]
           per_speaker = perSpeaker
           pooled = r.Pooled |> Option.map (Artefacts.pooledJson r) |> Option.toObj
           refit = r.Refit |> Option.map Artefacts.refitJson |> Option.toObj
           extract_seconds = r.ExtractSeconds; train_seconds = r.TrainSeconds; total_seconds = r.TotalSeconds
           out = r.OutDir; skipped = r.Skipped.Length |})

/// What the command line chose, which decides the options that apply (OptionRules).
type private Mode =
    { /// --resume: the run continues with the settings of its run.json; an option given with it must agree with them
      /// (checked against run.json in `run`, RunFile.resumeConflicts).
      Resuming: bool
      /// The declared schema the run extracts (--features, else the model's own); None with --resume or an unknown
      /// model or schema (refused by their own checks).
      Schema: Hybrid.Features.Schemas.FeatureSchemaInfo option
      Labels: bool
      /// --segment in seconds.
      Segment: float option
      /// --split as given (None: left out, or refused by its own check).
      Split: SplitSpec option
      /// --cluster HOST:PORT given.
      Cluster: bool
      /// --features given (else the model's own schema, which environmental clips may turn into a whole-clip image).
      Features: bool
      /// Why the run has no waveform augmentation for --augment-pool to draw versions of (None: it has some, or
      /// --resume, or an unknown model or augmentation list, refused by their own checks).
      NoWaveformAugmentation: string option }

/// The option table of `train`: each option's domain and the modes that use it.
let private table (mode: Mode) (arg: TrainArgs) : OptionRules.Check list =
    let feature name =
        match mode.Schema with
        | Some schema -> [ OptionRules.usedBySchema schema name ]
        | None -> []
    let anyLength = mode.Schema |> Option.forall (fun s -> s.ClipSamples = 0)
    // The model's own fixed-length image schema: environmental clips make it one image of --duration (Experiment.wholeClip).
    let wholeClip = not mode.Features && mode.Schema |> Option.exists (fun s -> s.ClipSamples > 0 && s.Shape.Count = 2)
    match arg with
    | Resume _ | No_Plots | Strict | Json -> []
    | Force -> [ OptionRules.UsedOnly(not mode.Resuming, "without --resume (a resumed run continues its folder; --force starts it afresh)") ]
    | Data _ | Model _ | Features _ | Out _ -> []
    | Label_Map text -> [ OptionRules.parsed "FROM=TO,FROM=TO,..." Dataset.parseLabelMap text ]
    | Split text ->
        [ OptionRules.split "official, speaker:NAME[,NAME], loso, fold:K[,K], folds, random:RATIO with RATIO in (0, 1) or kfold:K with K >= 2" (fun _ -> true) text ]
    | N_Fft n -> OptionRules.within 2 16384 n :: feature "n_fft"
    | Hop_Length n -> OptionRules.atLeast 1 n :: feature "hop_length"
    | N_Mels n -> OptionRules.atLeast 1 n :: feature "n_mels"
    | Fmin hz -> OptionRules.nonNegative " Hz" hz :: feature "fmin"
    | Fmax hz -> OptionRules.positive " Hz" hz :: feature "fmax"
    | N_Mfcc n -> OptionRules.atLeast 1 n :: feature "n_mfcc"
    | Top_Db value -> OptionRules.topDbDomain value :: feature "top_db"
    | Pcen value -> OptionRules.pcenDomain value :: feature "pcen"
    | Epochs n -> [ OptionRules.atLeast 1 n ]
    | Batch_Size n -> [ OptionRules.atLeast 1 n ]
    | Lr rate -> [ OptionRules.positive "" rate ]
    | Augment text ->
        [ OptionRules.parsed "none or a list of noise:C, snr:DB[-DB], pink:DB[-DB], brown:DB[-DB], background:DB[-DB], shift:SECONDS, gain:DB, speed:F[-F], reverb:SECONDS[-SECONDS], freq-mask:BANDS and time-mask:FRAMES"
              (fun t -> if t.Trim() <> "none" then Augment.parse t |> ignore) text ]
    | Augment_Pool k ->
        [ OptionRules.within 1 64 k
          match mode.NoWaveformAugmentation with
          | Some why -> OptionRules.UsedOnly(false, sprintf "with waveform augmentation (noise, snr, pink, brown, background, shift, gain, speed or reverb in --augment), whose versions it draws from; %s" why)
          | None -> () ]
    | Loudness dbfs -> [ OptionRules.InDomain(dbfs >= -100.0 && dbfs <= 0.0, "a level in dBFS in [-100, 0]", OptionRules.text dbfs) ]
    | Noise _ -> []
    | Per_Utterance text ->
        [ OptionRules.parsed "none, mean or meanvar" Hybrid.Classifier.PerUtterance.parse text
          match mode.Schema with
          | Some schema -> OptionRules.UsedOnly(schema.Shape.Count = 2, sprintf "to [bands, frames] features (schema '%s' has shape [%s])" schema.Name (String.Join(", ", schema.Shape)))
          | None -> () ]
    | Trim text -> [ OptionRules.parsed "none or TOP_DB:FRAME_LENGTH:HOP_LENGTH (top_db in (0, 120], lengths 1 to 65536 samples)" Hybrid.Classifier.Trim.parse text ]
    | Test_Speeds text ->
        [ OptionRules.parsed "none, F[*W],... or LO-HI:STEP[:tri] with factors in [0.5, 2] and positive weights" TestSpeeds.parse text ]
    | Labels text ->
        [ OptionRules.InDomain(text.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries).Length > 0, "a comma-separated list of class names", text) ]
    | Other_Label _ -> [ OptionRules.UsedOnly(mode.Labels || mode.Resuming, "with --labels (it names the class the other labels are folded into)") ]
    | Validation ratio -> [ OptionRules.fraction ratio ]
    | Early_Stopping patience -> [ OptionRules.atLeast 1 patience ]
    | Class_Weight text ->
        [ OptionRules.parsed "none or balanced" ClassWeighting.parse text
          OptionRules.UsedOnly(not mode.Cluster || text.Trim() = "none", "without --cluster (the cluster's workers weigh every class 1)") ]
    | Refit ->
        [ match mode.Split with
          | Some split when not (CrossValidation.isCrossValidation split) ->
              OptionRules.UsedOnly(false, sprintf "with a cross-validation split (--split folds, loso or kfold:K; --split %s trains one model, model.hnn, already)" (Split.format split))
          | _ -> () ]
    | Sr hz ->
        [ OptionRules.atLeast 1 hz
          match mode.Schema with
          | Some schema when schema.SampleRate > 0 ->
              OptionRules.InDomain((hz = schema.SampleRate), sprintf "%d, the rate schema '%s' is defined at (choose a schema at another rate, or leave --sr out)" schema.SampleRate schema.Name, string hz)
          | _ -> () ]
    | Duration s ->
        [ OptionRules.seconds s
          OptionRules.UsedOnly(anyLength || wholeClip || mode.Segment.IsSome,
              sprintf "with a schema that takes any clip length, the model's own image features (environmental clips) or --segment (schema '%s' has clips of %d samples)"
                  (mode.Schema |> Option.map (fun x -> x.Name) |> Option.defaultValue "") (mode.Schema |> Option.map (fun x -> x.ClipSamples) |> Option.defaultValue 0)) ]
    | Segment s -> [ OptionRules.seconds s ]
    | Segment_Hop s ->
        [ OptionRules.UsedOnly(mode.Segment.IsSome || mode.Resuming, "with --segment (the windows it spaces)")
          match mode.Segment with
          | Some window -> OptionRules.InDomain(s > 0.0 && s <= window, sprintf "a number of seconds in (0, %s], at most --segment" (OptionRules.text window), OptionRules.text s)
          | None -> () ]
    | Device name -> [ OptionRules.engine name ]
    | Threads n -> [ OptionRules.threads n ]
    | Seed seed -> [ OptionRules.atLeast 0 seed ]
    | Cluster _ -> []
    | Workers n -> [ OptionRules.UsedOnly(mode.Cluster, "with --cluster HOST:PORT (the model replicas trained there)"); OptionRules.atLeast 1 n ]
    | Certificate _ -> [ OptionRules.UsedOnly(mode.Cluster, "with --cluster HOST:PORT (TLS to that cluster)") ]

/// The schema variant's parameters from the feature options (Extraction.variant).
let private overridesOf (args: ParseResults<TrainArgs>) : Extraction.Overrides =
    { Extraction.noOverrides with
        NFft = args.TryGetResult N_Fft
        HopLength = args.TryGetResult Hop_Length
        NMels = args.TryGetResult N_Mels
        FMin = args.TryGetResult Fmin
        FMax = args.TryGetResult Fmax
        NMfcc = args.TryGetResult N_Mfcc
        Other =
            [ match args.TryGetResult Top_Db |> Option.map OptionRules.topDbOf with
              | Some t -> "top_db", (t |> Option.map OptionRules.text |> Option.defaultValue "none")
              | None -> ()
              match args.TryGetResult Pcen with
              | Some value -> "pcen", OptionRules.pcenText value
              | None -> () ] }

/// Checks every option against `table` before any data is read (exit code 2 with the option and its range).
let private enforce (args: ParseResults<TrainArgs>) =
    let resuming = args.Contains Resume
    let model = args.GetResult(Model, defaultValue = (List.head Recipes.all).Name)
    // None with --resume or an unknown model (refused below, naming the valid ones).
    let recipe = if resuming then None else (try Some(Recipes.byName model) with :? ArgumentException -> None)
    let schema =
        recipe |> Option.bind (fun r ->
            try Some(Hybrid.Features.Schemas.Schemas.ByName(args.GetResult(Features, defaultValue = r.Schema)))
            with :? ArgumentException -> None)
    let noWaveformAugmentation =
        recipe |> Option.bind (fun r ->
            try
                match args.TryGetResult Augment with
                | Some text when text.Trim() = "none" -> Some "--augment none turns augmentation off"
                | Some text when (Augment.waveform (Augment.parse text)).IsEmpty -> Some(sprintf "--augment '%s' holds none" text)
                | None when String.IsNullOrWhiteSpace r.Augment -> Some(sprintf "model '%s' has no augmentation of its own" model)
                | _ -> None
            with :? ArgumentException | :? DatasetException -> None)
    let split = args.TryGetResult Split |> Option.bind (fun text -> try Some(Hybrid.Features.Split.parse text) with :? ArgumentException | :? DatasetException -> None)
    OptionRules.enforce args (table { Resuming = resuming; Schema = schema; Labels = args.Contains Labels; Segment = args.TryGetResult Segment; Split = split; Cluster = args.Contains Cluster
                                      Features = args.Contains Features; NoWaveformAugmentation = noWaveformAugmentation })
    // An unknown model or schema is refused here, naming the valid ones.
    if not resuming then
        // The variant is laid out now, so that feature options that contradict each other are refused before the data.
        Recipes.schemaOf (Recipes.byName model) (args.TryGetResult Features) (overridesOf args) |> ignore

/// The pooled per-class table: (label, [precision; recall; f1; support]) per class.
let private pooledRows (r: RunResult) (pooled: Metrics) =
    [ for k in 0 .. r.Labels.Length - 1 ->
        r.Labels[k], [| sprintf "%.4f" pooled.Precision[k]; sprintf "%.4f" pooled.Recall[k]; sprintf "%.4f" pooled.F1[k]; string pooled.Support[k] |] ]

/// What the refit did, in one line.
let private refitLine (refit: RefitResult) =
    sprintf "%s trained on all %d recordings for %d epochs (train accuracy %.4f, %.1f s)" (nonNull (Path.GetFileName refit.ModelFile)) refit.NTrain refit.Epochs refit.TrainAccuracy refit.TrainSeconds

/// The closing summary as plain lines (output redirected, or not a terminal).
let private writeSummary (writer: TextWriter) (r: RunResult) =
    let say (line: string) = writer.WriteLine line
    say ""
    say (sprintf "device:        %s (%s)" r.Device r.DeviceName)
    say (sprintf "model:         %s on %s features, split %s" r.Model r.Features r.Split)
    say (sprintf "clips:         %s" r.Clips)
    for f in r.Folds do
        say (sprintf "  %-12s train %5d  validation %5d  test %5d  train accuracy %.4f  validation accuracy %s  test accuracy %.4f  (%.1f s)" f.Name f.NTrain f.NValidation f.NTest f.TrainAccuracy
                 (f.ValidationAccuracy |> Option.map (sprintf "%.4f") |> Option.defaultValue "-") f.TestAccuracy f.TrainSeconds)
        for name, n, accuracy in f.PerSource do
            say (sprintf "    %-22s test %5d  test accuracy %.4f" name n accuracy)
    if r.Folds.Length > 1 then say (sprintf "test accuracy over %d folds: mean %.4f, standard deviation %.4f" r.Folds.Length r.TestAccuracy r.TestAccuracyStd)
    else say (sprintf "test accuracy: %.4f" r.TestAccuracy)
    if not r.TestSpeeds.IsEmpty then
        say (sprintf "               (test predictions averaged over speeds*weights %s)" (TestSpeeds.format r.TestSpeeds))
    if r.ClassWeight <> Unweighted then say (sprintf "class weights: %s (--class-weight)" (ClassWeighting.format r.ClassWeight))
    match r.Pooled with
    | Some pooled ->
        say (sprintf "pooled out-of-fold predictions: %d recordings, accuracy %.4f, macro F1 %.4f" pooled.Count pooled.Accuracy (Metrics.macroF1 pooled))
        say (sprintf "  %-14s %9s %9s %9s %8s" "class" "precision" "recall" "f1" "support")
        for label, cells in pooledRows r pooled do
            say (sprintf "  %-14s %9s %9s %9s %8s" label cells[0] cells[1] cells[2] cells[3])
    | None -> ()
    r.Refit |> Option.iter (fun refit -> say (sprintf "refit:         %s" (refitLine refit)))
    say (sprintf "time:          features %.1f s, training %.1f s, total %.1f s" r.ExtractSeconds r.TrainSeconds r.TotalSeconds)
    say (sprintf "output:        %s" r.OutDir)

/// The closing summary drawn on a terminal: a table of the folds (one row per fold; the mean and standard deviation
/// under them for cross-validation) and a grid of the run's facts.
let private drawSummary (console: Spectre.Console.IAnsiConsole) (r: RunResult) =
    let accuracy (v: float) = sprintf "%.4f" v
    let rows =
        [ for f in r.Folds do
            yield [ f.Name; string f.NTrain; string f.NValidation; string f.NTest; accuracy f.TrainAccuracy
                    (f.ValidationAccuracy |> Option.map accuracy |> Option.defaultValue "-"); accuracy f.TestAccuracy; sprintf "%.1f" f.TrainSeconds ]
          if r.Folds.Length > 1 then
              yield [ "mean"; ""; ""; ""; ""; ""; accuracy r.TestAccuracy; "" ]
              yield [ "std"; ""; ""; ""; ""; ""; accuracy r.TestAccuracyStd; "" ]
          for f in r.Folds do
              for name, n, a in f.PerSource do
                  yield [ sprintf "  %s" name; ""; ""; string n; ""; ""; accuracy a; "" ] ]
    let title = if r.Folds.Length > 1 then sprintf "test accuracy over %d folds" r.Folds.Length else "test accuracy"
    Terminal.blankLine console
    console.Write(
        Terminal.table (Some title) [ "fold"; "train"; "valid."; "test"; "train acc"; "valid. acc"; "test acc"; "s" ] rows)
    r.Pooled |> Option.iter (fun pooled ->
        let title = sprintf "out-of-fold predictions pooled: accuracy %.4f" pooled.Accuracy
        console.Write(
            Terminal.table (Some title) [ "class"; "precision"; "recall"; "f1"; "support" ]
                [ for label, cells in pooledRows r pooled do
                      yield label :: List.ofArray cells
                  yield [ "macro avg"; ""; ""; sprintf "%.4f" (Metrics.macroF1 pooled); string pooled.Count ] ]))
    console.Write(
        Terminal.grid
            [ "device", sprintf "%s (%s)" r.Device r.DeviceName
              "model", sprintf "%s on %s features, split %s" r.Model r.Features r.Split
              "clips", r.Clips
              "test accuracy", (if r.Folds.Length > 1 then sprintf "mean %.4f, standard deviation %.4f" r.TestAccuracy r.TestAccuracyStd else accuracy r.TestAccuracy)
              if not r.TestSpeeds.IsEmpty then "test speeds", TestSpeeds.format r.TestSpeeds
              if r.ClassWeight <> Unweighted then "class weights", ClassWeighting.format r.ClassWeight
              match r.Pooled with Some p -> "pooled accuracy", sprintf "%.4f (%d recordings)" p.Accuracy p.Count | None -> ()
              match r.Refit with Some refit -> "refit", refitLine refit | None -> ()
              "time", sprintf "features %.1f s, training %.1f s, total %.1f s" r.ExtractSeconds r.TrainSeconds r.TotalSeconds
              "output", r.OutDir ])

/// Runs the command. Exit codes: 0 done; 1 training or data failed; 2 bad options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    Command.run<TrainArgs> "train" out error argv (fun args ->
        enforce args
        use _ = OptionRules.threadScope (args.TryGetResult Threads)
        let json = args.Contains Json
        // Log lines and the summary go to standard output, or to standard error when standard output carries --json.
        let logWriter = if json then error else out
        let options: TrainOptions =
            { Experiment.defaults with
                Data = args.GetResults Data
                LabelMap = args.TryGetResult Label_Map |> Option.map Dataset.parseLabelMap |> Option.defaultValue []
                Split = args.TryGetResult Split
                Model = args.GetResult(Model, defaultValue = (List.head Recipes.all).Name)
                Features = args.TryGetResult Features
                Epochs = args.TryGetResult Epochs
                BatchSize = args.TryGetResult Batch_Size
                LearningRate = args.TryGetResult Lr
                Augment = args.TryGetResult Augment |> Option.map (fun a -> if a = "none" then "" else a)
                AugmentPool = args.TryGetResult Augment_Pool
                TestSpeeds = args.TryGetResult Test_Speeds |> Option.map TestSpeeds.parse
                Labels = args.TryGetResult Labels |> Option.map (fun l -> l.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries) |> List.ofArray)
                OtherLabel = args.TryGetResult Other_Label
                Validation = args.GetResult(Validation, defaultValue = Experiment.defaults.Validation)
                EarlyStopping = args.TryGetResult Early_Stopping
                ClassWeight = args.TryGetResult Class_Weight |> Option.map ClassWeighting.parse |> Option.defaultValue Unweighted
                Refit = args.Contains Refit
                SampleRate = args.TryGetResult Sr
                Duration = args.TryGetResult Duration
                Segment = args.TryGetResult Segment
                SegmentHop = args.TryGetResult Segment_Hop
                Trim = args.TryGetResult Trim |> Option.map Hybrid.Classifier.Trim.parse
                PerUtterance = args.TryGetResult Per_Utterance |> Option.map Hybrid.Classifier.PerUtterance.parse
                Loudness = args.TryGetResult Loudness
                Noise = args.TryGetResult Noise
                Resume = args.TryGetResult Resume
                Device = args.GetResult(Device, defaultValue = "auto")
                Seed = args.GetResult(Seed, defaultValue = 0)
                Out = args.TryGetResult Out
                Progress = true
                Plots = not (args.Contains No_Plots)
                Strict = args.Contains Strict
                FeatureParameters = overridesOf args }
        // A resumed run replays its run.json; options given with --resume may only repeat what it records.
        match options.Resume with
        | Some dir ->
            let given =
                [ for arg in args.GetAllResults() do
                    match arg with
                    | Resume _ | Force | No_Plots | Strict | Json | Cluster _ | Workers _ | Certificate _ | Threads _ -> ()
                    | _ -> yield OptionRules.flagOf args.Parser arg ]
            match RunFile.resumeConflicts dir options given with
            | [] -> ()
            | conflicts ->
                let file = Path.Combine(dir, RunFile.FileName)
                conflicts
                |> List.map (fun (option, recorded, value) -> sprintf "%s %s conflicts with the run being resumed: %s records %s" option value file recorded)
                |> String.concat "; "
                |> fun text -> raise (ArgumentException(text + " (leave the option out to continue the run, or start a new run)"))
        | None ->
            // A fresh run does not overwrite a run folder unless told to.
            match options.Out with
            | Some dir when not (args.Contains Force) ->
                match RunFile.runContents dir with
                | [] -> ()
                | found ->
                    raise (ArgumentException(sprintf "--out %s already holds a run (%s): give --force to overwrite it, --resume %s to continue it, or another --out folder"
                                                 dir (String.concat ", " found) dir))
            | _ -> ()
        let workers = args.GetResult(Workers, defaultValue = 2)
        let client =
            args.TryGetResult Cluster
            |> Option.map (fun gateway ->
                try
                    Hybrid.Cluster.SiloHost.ConnectAsync(gateway, Option.toObj (args.TryGetResult Certificate), Environment.GetEnvironmentVariable "HYBRID_CERTIFICATE_PASSWORD").Result
                with :? AggregateException as e when (e.InnerException :? Hybrid.Cluster.ClusterException) ->
                    invalidArg "cluster" (nonNull e.InnerException).Message)
        use _ = match client with Some h -> h :> IDisposable | None -> { new IDisposable with member _.Dispose() = () }
        let distributed (log: string -> unit) =
            client |> Option.map (fun host ->
                let grains = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Orleans.IClusterClient>(host.Services)
                fun (dir: string) ->
                    let settings = Hybrid.Cluster.ClusterTrainingOptions(workers, Engine = options.Device)
                    try
                        Hybrid.Cluster.DataParallelTrainer.RunAsync(grains, dir, settings, Action<string>(log)).Result |> ignore
                    with :? AggregateException as e when not (isNull e.InnerException) ->
                        raise (nonNull e.InnerException))
        let r = Terminal.withProgress error logWriter (fun log -> Experiment.train { options with Log = log; Distributed = distributed log })
        match Terminal.consoleOf logWriter with
        | Some console -> drawSummary console r
        | None -> writeSummary logWriter r
        if json then out.WriteLine(summaryJson r)
        0)
