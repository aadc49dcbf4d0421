/// `hybrid features`: extract a predefined schema or a configured transform for every recording of a dataset
/// (or one part of a split) on an engine, and export it as CSV, Parquet or .npy (with a file-list sidecar). The work
/// is FeatureExport.export's; the command turns its options (FeaturesOptions) into the request, adds the cluster
/// step (--cluster) and the progress display, and prints the summary.
module Hybrid.Cli.FeaturesCommand

open System
open System.IO
open Argu
open Hybrid.Features
open Hybrid.Features.Schemas
open Hybrid.Cli.FeaturesOptions

/// The export the options ask for (FeatureExport.export): the schema's run-time variant is laid out, and its
/// parameters checked against each other, here, before any data is read.
let requestOf (args: ParseResults<FeaturesArgs>) : FeatureExport.ExportRequest =
    let features =
        match args.TryGetResult Schema, args.TryGetResult Transform with
        | Some name, _ -> FeatureExport.ExportFeatures.Schema(Extraction.variant (Schemas.ByName name) (overridesOf args))
        | None, name ->
            FeatureExport.ExportFeatures.Transform
                { FeatureExport.Kind = Transforms.parseKind (Option.defaultValue "" name)
                  Sr = args.TryGetResult Sr
                  Length = args.TryGetResult Length
                  Settings = settingsOf args }
    { FeatureExport.request features (args.GetResult Out) with
        Data = FeatureExport.ExportData.Folder(args.TryGetResult Data)
        Split = args.TryGetResult Split |> Option.map Split.parse
        Part =
            match args.GetResult(Part, defaultValue = "all").Trim().ToLowerInvariant() with
            | "train" -> FeatureExport.ExportPart.Train
            | "validation" -> FeatureExport.ExportPart.Validation
            | "test" -> FeatureExport.ExportPart.Test
            | _ -> FeatureExport.ExportPart.All
        Seed = args.GetResult(Seed, defaultValue = 0)
        Device = args.GetResult(Device, defaultValue = "auto")
        BatchSize = args.TryGetResult Batch_Size
        Cache = args.TryGetResult Cache
        Strict = args.Contains Strict }

/// With --cluster: the missing feature shards are extracted on the cluster before the cache is read (the schema's
/// variant travels with each shard order). Returns the recordings a worker could not read.
let private clusterPrefill (out: TextWriter) (error: TextWriter) (args: ParseResults<FeaturesArgs>) (gateway: string) (step: FeatureExport.CachePrefill) =
    let unwrap (task: Threading.Tasks.Task<'T>) =
        try task.Result with :? AggregateException as e when not (isNull e.InnerException) -> raise (nonNull e.InnerException)
    use host = unwrap (Hybrid.Cluster.SiloHost.ConnectAsync(gateway, Option.toObj (args.TryGetResult Certificate), Environment.GetEnvironmentVariable "HYBRID_CERTIFICATE_PASSWORD"))
    let grains = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Orleans.IClusterClient>(host.Services)
    let work = ResizeArray [ for i in step.Items -> Hybrid.Cluster.ExtractionItem(i.Path, i.Key, i.Label) ]
    let settings =
        Hybrid.Cluster.ClusterExtractionOptions(
            Engine = args.GetResult(Device, defaultValue = "auto"), ShardSize = Extraction.shardSize, Variant = step.Variant)
    let result =
        unwrap (Hybrid.Cluster.DistributedExtraction.RunAsync(grains, step.Root, work, step.CacheFolder, args.GetResult Schema, settings, Action<string>(fun line -> error.WriteLine line)))
    out.WriteLine(sprintf "features: %d shards, %d written on the cluster (%d reassigned after lost workers) in %.1f s" result.Shards result.Written result.Reassigned result.Seconds)
    Array.zip result.SkippedPaths result.SkippedReasons |> Array.map (fun (path, reason) -> { Path = path; Reason = reason })

/// Runs the command. Exit codes: 0 done; 1 extraction failed; 2 bad options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    Command.run<FeaturesArgs> "features" out error argv (fun args ->
        match args.TryGetResult Schema, args.TryGetResult Transform with
        | Some _, Some _ -> invalidArg "schema" "give either --schema or --transform, not both"
        | None, None -> invalidArg "schema" "give --schema NAME or --transform NAME"
        | _ -> ()
        let kind = args.TryGetResult Transform |> Option.map Transforms.parseKind
        if kind = Some Transforms.Scattering && not (args.Contains J) then invalidArg "j" "--transform scattering needs --j (log2 of the largest wavelet scale)"
        OptionRules.enforce args (table (modeOf args kind))
        use _ = OptionRules.threadScope (args.TryGetResult Threads)
        let report what (s: SkippedFile) = error.WriteLine(sprintf "features: %s %s: %s" what s.Path s.Reason)
        let request =
            { requestOf args with
                OnSkipped = report "skipped"
                OnWarning = report "warning"
                Log = fun line -> error.WriteLine("features: " + line)
                // On a live terminal the extraction's progress is drawn by Spectre.Console; otherwise Progress.create
                // prints its plain lines.
                Around = fun step -> Terminal.withProgress error error (fun _ -> step ())
                Prefill = args.TryGetResult Cluster |> Option.map (clusterPrefill out error args) }
        let result = FeatureExport.export request
        result.CacheHits |> Option.iter (fun hits -> out.WriteLine(sprintf "features: %d of %d rows from the cache %s" hits result.Items.Length request.Cache.Value))
        for f in result.Files do out.WriteLine(sprintf "features: wrote %s" f)
        out.WriteLine(sprintf "features: %d clips x [%s] on %s in %.2f s" result.Items.Length (String.Join(" x ", result.Shape)) result.Device result.Seconds)
        if args.Contains Json then
            let json =
                Text.Json.JsonSerializer.Serialize(
                    {| items = result.Items.Length; skipped = result.Skipped.Length; warnings = result.Warnings.Length; shape = result.Shape
                       extractor = result.Extractor; variant = result.Variant; fingerprint = result.Fingerprint; device = result.Device
                       files = result.Files; seconds = result.Seconds |})
            out.WriteLine json
        0)
