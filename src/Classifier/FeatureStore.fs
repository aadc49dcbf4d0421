namespace Hybrid.Classifier

open System
open System.IO
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas

/// The shards of some clips: their plans, the extractor that makes their rows, and a member's clips shaped for it
/// (what rebuilding a damaged shard needs).
type ShardSet =
    { Plans: Shards.ShardPlan[]
      Extractor: Pipeline.Extractor
      Clips: Shards.Source -> float32[][] }

/// Where a run's feature rows come from.
type FeatureStore =
    { /// The shard cache folder (Shards).
      Cache: string
      /// The shard plans of every recording's clips.
      Recordings: ShardSet
      /// Receives a line for every damaged shard rebuilt.
      Warn: string -> unit
      /// Keys of the recordings whose shards were already in the cache when the run started.
      Cached: Set<string>
      /// Background-noise recordings at the plan's rate for `background:` augmentation, and their identity (noiseIdOf).
      Noises: float32[][]
      NoiseId: string }

/// A split part's feature rows in a row file: `Physical.[i]` is the file row of logical row i, whose label is
/// `Labels.[i]` and whose recording is `Items.[i]` (an index into the part's items). Logical rows are the part's
/// clips in item order (windows in order), then augmented copy 1 of them, copy 2, ...; block b (0: the clips, k: copy
/// k) is logical rows `Blocks.[b] .. Blocks.[b + 1] - 1` (an augmented copy may have other windows than the clips).
type internal PartRows =
    { File: string
      RowLength: int
      Physical: int[]
      Labels: int[]
      Items: int[]
      Blocks: int[] }

/// The one feature store of `train`, `features --cache` and the cluster's workers: shards of every recording's clips
/// (and of augmented copies) planned, built where missing, verified and read (Shards), and the row files a fold's
/// parts are gathered into.
[<RequireQualifiedAccess>]
module FeatureStore =
    /// The shard variant text of a clip plan's clips (Shards.plan): Extraction.WholeRecordings for one centred clip per
    /// recording, with the recording cut and the windows when the plan has them (so windows are cached too), and the
    /// trim when it has one.
    let internal clipVariant (plan: ClipPlan) =
        match plan.Segment, plan.RecordingSamples, plan.Trim with
        | None, None, None -> Extraction.WholeRecordings
        | segment, recording, None ->
            sprintf "%s;recording_samples=%s;segment=%s" Extraction.WholeRecordings
                (match recording with Some n -> string n | None -> "none")
                (match segment with Some (w, h) -> sprintf "%d/%d" w h | None -> "none")
        | segment, recording, trim ->
            sprintf "%s;recording_samples=%s;segment=%s;trim=%s" Extraction.WholeRecordings
                (match recording with Some n -> string n | None -> "none")
                (match segment with Some (w, h) -> sprintf "%d/%d" w h | None -> "none")
                (Trim.format trim)

    /// The shard variant text of augmented copy `copy` of the clips: the clip variant, the augmentations, the seed and the
    /// background-noise recordings (`noiseId`), everything an augmented clip depends on besides the recording.
    let internal copyVariant (plan: ClipPlan) (augmentations: Augmentation list) (seed: int) (noiseId: string) (copy: int) =
        sprintf "%s;augment=%s;seed=%d;noises=%s;copy=%d" (clipVariant plan) (Augment.format augmentations) seed noiseId copy

    /// Identifies background-noise recordings by their keys, sizes and modification times (hashed), "none" without any.
    let internal noiseIdOf (files: string[]) =
        if files.Length = 0 then "none"
        else
            let text = files |> Array.sort |> Array.map (fun f -> let i = FileInfo f in sprintf "%s\t%d\t%d" i.FullName i.Length i.LastWriteTimeUtc.Ticks) |> String.concat "\n"
            Convert.ToHexString(Security.Cryptography.SHA256.HashData(Text.Encoding.UTF8.GetBytes text)).Substring(0, 16).ToLowerInvariant()

    /// The clips of a recording under a plan: loaded at the plan's rate and cut into windows (ClipPlan.windows); with
    /// `copy` > 0, each window augmented as that copy (Augment.apply seeded by the run's seed, the copy and the window's
    /// key: the recording's key, `{key}#{window}` with windows). Each clip is shaped by Extraction.fit afterwards.
    let internal clipsOf (plan: ClipPlan) (augmentations: Augmentation list) (seed: int) (noises: float32[][]) (copy: int) (source: Shards.Source) =
        let windows = ClipPlan.clips plan source.Path
        if copy = 0 then windows
        else
            windows |> Array.mapi (fun w x ->
                let key = match plan.Segment with Some _ -> sprintf "%s#%d" source.Key w | None -> source.Key
                Augment.apply (seed * 7919 + copy) key noises plan.SampleRate augmentations x)

    /// Plans the shards of `items`' clips (copy 0: the recordings; copy k: augmented copy k, `clips` giving a member's
    /// clips) and computes the missing ones under `cache`, a bounded group of recordings at a time; returns the set and
    /// how many recordings' shards were already there.
    let internal ensure (engine: Engine) (schema: FeatureSchemaInfo) (cache: string) (variant: string) (clips: Shards.Source -> float32[][]) (items: Item[]) =
        let set =
            { Plans = Shards.plan schema.Fingerprint variant Extraction.shardSize (items |> Array.map (fun i -> Shards.source i.Path i.Key i.Label))
              Extractor = Extraction.extractor engine schema
              Clips = clips >> Array.map (Extraction.fit schema) }
        let found, _ = Shards.ensure cache set.Plans set.Extractor set.Clips 32 Progress.silent
        set, found

    /// The rows of a split part, as `train` feeds them to the network before the train-fitted standardisation: the
    /// clips' rows read from their shards (`originals`: the recordings' clips, Shards.readOrRebuild: a damaged shard is
    /// reported to `warn` and built again) and, for each augmented copy, from the copy's shards (computed here when
    /// missing), per-utterance normalised when the recipe asks, appended shard by shard to the row file `file`. Only one
    /// shard's rows are in memory at a time.
    let internal partRows (engine: Engine) (schema: FeatureSchemaInfo) (cache: string) (perUtterance: PerUtterance) (plan: ClipPlan)
                          (originals: ShardSet) (augmentations: Augmentation list) (copies: int) (seed: int)
                          (noises: float32[][]) (noiseId: string) (warn: string -> unit) (file: string) (items: Item[]) : PartRows =
        let index = items |> Array.mapi (fun i item -> item.Key, i) |> dict
        use writer = new RowFile.Writer(file, schema.Length)
        let append (set: ShardSet) =
            let physical = Collections.Generic.Dictionary<struct (int * int), int>()
            for p in set.Plans do
                if p.Sources |> Array.exists (fun s -> index.ContainsKey s.Key) then
                    let shard = Shards.readOrRebuild cache p set.Extractor set.Clips warn
                    let keep = [| for r in 0 .. shard.Rows - 1 do if index.ContainsKey shard.Keys.[r] then r |]
                    let values = Array.zeroCreate<float32> (keep.Length * schema.Length)
                    keep |> Array.iteri (fun k r -> Array.blit shard.Values (r * schema.Length) values (k * schema.Length) schema.Length)
                    let first = writer.Rows
                    writer.Append(Preparation.perUtterance schema perUtterance values)
                    keep |> Array.iteri (fun k r -> physical.[struct (index.[shard.Keys.[r]], shard.Windows.[r])] <- first + k)
            // Logical order: the part's items in order, each recording's windows in order.
            [| for i in 0 .. items.Length - 1 do
                   let mutable w = 0
                   while physical.ContainsKey(struct (i, w)) do
                       yield i, physical.[struct (i, w)]
                       w <- w + 1 |]
        let blocks =
            [| yield append originals
               for copy in 1 .. copies do
                   let variant = copyVariant plan augmentations seed noiseId copy
                   let set, _ = ensure engine schema cache variant (clipsOf plan augmentations seed noises copy) items
                   yield append set |]
        let rows = Array.concat blocks
        { File = file; RowLength = schema.Length; Physical = rows |> Array.map snd; Labels = rows |> Array.map (fun (i, _) -> items.[i].LabelIndex)
          Items = rows |> Array.map fst; Blocks = Array.scan (fun start (b: _[]) -> start + b.Length) 0 blocks }

    /// The choices of PooledRows over a part whose blocks are the clips and `pool` augmented versions of them: the clips'
    /// rows as they are, then `copies` blocks of slots laid out as versions 1 .. copies are, each slot (a recording's
    /// window) choosing among that window's rows in every version that has it (all `pool` of them unless augmentation
    /// changed a recording's window count). Logical row indices of `part`. Raises ArgumentException when the part does
    /// not hold 1 + pool blocks or copies exceeds pool.
    let internal poolChoices (part: PartRows) (copies: int) (pool: int) : int[][] =
        if part.Blocks.Length <> pool + 2 then invalidArg "part" (sprintf "the part holds %d blocks, not the clips and %d augmented versions" (part.Blocks.Length - 1) pool)
        if copies < 1 || copies > pool then invalidArg "copies" (sprintf "%d augmented rows per clip cannot be drawn from %d versions" copies pool)
        // Each version's rows keyed by (recording, window within the recording).
        let windows =
            [| for v in 1 .. pool ->
                let counts = Collections.Generic.Dictionary<int, int>()
                [| for r in part.Blocks.[v] .. part.Blocks.[v + 1] - 1 ->
                    let item = part.Items.[r]
                    let w = match counts.TryGetValue item with | true, c -> c | _ -> 0
                    counts.[item] <- w + 1
                    struct (item, w), r |] |]
        let versions = windows |> Array.map dict
        [| for r in part.Blocks.[0] .. part.Blocks.[1] - 1 -> [| r |]
           for slot in 0 .. copies - 1 do
               for key, _ in windows.[slot] ->
                   // The slot's own version always has the window, so there is at least one choice.
                   [| for v in 0 .. pool - 1 do
                        match versions.[v].TryGetValue key with
                        | true, row -> row
                        | _ -> () |] |]

    /// The part's rows as a row source, `prepare`d on every read (e.g. the train-fitted standardisation).
    let internal rowSource (part: PartRows) (prepare: float32[] -> int -> unit) =
        new RowFile(part.File, part.RowLength, part.Labels, part.Physical, prepare)

    /// Every logical row of a part in memory, [rows * RowLength] (for tests and small parts).
    let internal partValues (part: PartRows) =
        use source = rowSource part (fun _ _ -> ())
        let values = Array.zeroCreate<float32> (part.Physical.Length * part.RowLength)
        if part.Physical.Length > 0 then source.Read(Array.init part.Physical.Length id, 0, part.Physical.Length, values)
        values

    /// The centre frequencies in Hz of a mel-band image schema's rows (librosa.mel_frequencies(n_mels + 2, fmin, fmax,
    /// htk)[1:-1]: the peaks of its triangular filters), as VTLP warps them; empty for other schemas.
    let melCentres (schema: FeatureSchemaInfo) : float[] =
        let p = schema.Parameters
        if schema.Shape.Count = 2 && schema.Members |> Seq.exists (fun m -> m.Kind = FeatureKind.MelBands) then
            let htk = p.Mel.Htk
            let lo, hi = Filters.HzToMel(p.Mel.FMin, htk), Filters.HzToMel(p.Mel.FMaxOrNyquist, htk)
            Array.init p.NMels (fun i -> Filters.MelToHz(lo + (hi - lo) * float (i + 1) / float (p.NMels + 1), htk))
        else [||]

    /// How a schema's rows are standardised: per mel band over every frame for a 2-D [bands, frames] image, else per
    /// column. The feature store fits the statistics with it and Inference applies the stored ones with it.
    let grouping (schema: FeatureSchemaInfo) =
        if schema.Shape.Count = 2 then Normalization.PerBand(schema.Shape.[0], schema.Shape.[1]) else Normalization.PerColumn

    /// The feature store of a run: the shards of every recording's clips under the plan (copy 0) computed where missing,
    /// planned over the whole dataset so that every fold and part (and a later run with another split) reads the same
    /// shards; `noiseFiles` are loaded for `background:` augmentation when the augmentations mix them.
    let create (engine: Engine) (settings: RunSettings) (cache: string) (items: Item[]) (noiseFiles: string[]) (warn: string -> unit) : FeatureStore =
        let plan = settings.Preparation.Clips
        let schema = Preparation.extractionSchema settings.Schema plan
        let set, found = ensure engine schema cache (clipVariant plan) (clipsOf plan [] settings.Seed [||] 0) items
        let mixesNoise = settings.Augmentations |> List.exists (function Background _ -> true | _ -> false)
        { Cache = cache; Recordings = set; Warn = warn; Cached = found |> Seq.collect (fun p -> p.Sources |> Seq.map (fun s -> s.Key)) |> Set.ofSeq
          Noises = (if mixesNoise then Augment.loadNoise plan.SampleRate noiseFiles else [||])
          NoiseId = (if mixesNoise then noiseIdOf noiseFiles else "none") }

    /// The features of a fold (step 2 of Experiment.train): the training rows (clips or windows, and augmented copies) and validation rows of a fold
    /// as row files in `work` (read from the store's recording shards and the augmented copies' shards), with
    /// statistics fitted on the training rows in row order (Normalization.Accumulator, bit for bit Normalization.fit) and
    /// applied to every batch read. With an augment pool larger than the copies, every augmented version is written and
    /// fitted, and the training rows are PooledRows drawing each epoch's copies from them (poolChoices). Dispose the row sources (and delete `work`) when the fold is done.
    let foldFeatures (engine: Engine) (settings: RunSettings) (store: FeatureStore) (work: string) (fold: SplitFold) : FoldFeatures =
        let plan = settings.Preparation.Clips
        let schema = Preparation.extractionSchema settings.Schema plan
        Directory.CreateDirectory work |> ignore
        let part name (items: Item[]) augmentations copies =
            partRows engine schema store.Cache settings.Preparation.PerUtterance plan store.Recordings augmentations copies settings.Seed store.Noises store.NoiseId store.Warn (Path.Combine(work, name + ".f32")) items
        let train = part "train" fold.Train (Augment.waveform settings.Augmentations) (max settings.Copies settings.AugmentPool)
        let stats =
            let acc = Normalization.Accumulator(grouping schema, schema.Length)
            use raw = rowSource train (fun _ _ -> ())
            let chunk = 256
            let buffer = Array.zeroCreate<float32> (chunk * schema.Length)
            let order = Array.init raw.Count id
            let mutable start = 0
            while start < raw.Count do
                let n = min chunk (raw.Count - start)
                raw.Read(order, start, n, buffer)
                acc.Add(buffer, n)
                start <- start + n
            acc.Stats()
        let standardise (dest: float32[]) (rows: int) = Normalization.applyRowsInPlace stats schema.Length dest rows
        let validation =
            if fold.Validation.Length = 0 then None
            else Some(rowSource (part "validation" fold.Validation [] 0) standardise :> RowSource)
        let cached = Array.append fold.Train fold.Validation |> Array.filter (fun i -> store.Cached.Contains i.Key) |> Array.length
        let trainRows =
            let source =
                if settings.AugmentPool > settings.Copies then
                    new PooledRows(rowSource train standardise, poolChoices train settings.Copies settings.AugmentPool, settings.Seed) :> RowSource
                else rowSource train standardise :> RowSource
            if settings.Augmentations |> List.exists Augment.isImage then
                let bands, frames = schema.Shape.[0], schema.Shape.[1]
                let centres = melCentres schema
                let augment epoch row dest offset =
                    Augment.imageRow settings.Seed (sprintf "%d/%d" epoch row) bands frames centres settings.Augmentations dest offset
                new TransformedRows(source, augment) :> RowSource
            else source
        { FoldFeatures.Train = trainRows; Validation = validation; Stats = stats
          TrainRecordings = fold.Train.Length; ValidationRecordings = fold.Validation.Length; CachedRecordings = cached }
