namespace Hybrid.Features

open System
open System.Globalization

/// A small deterministic generator (SplitMix64, Steele et al. 2014): the same seed gives the same stream
/// on every platform and .NET version, unlike System.Random's unspecified algorithm.
type internal SeededRandom(seed: uint64) =
    let mutable state = seed
    let mutable spare = nan

    static member private Mix(z: uint64) =
        let z = (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
        let z = (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
        z ^^^ (z >>> 31)

    /// FNV-1a over the UTF-16 code units of a string.
    static member Hash(text: string) =
        let mutable h = 0xCBF29CE484222325UL
        for c in text do
            h <- (h ^^^ uint64 c) * 0x100000001B3UL
        h

    /// A generator for one (seed, key) pair: independent of every other key and of call order.
    static member ForKey(seed: int, key: string) =
        SeededRandom(SeededRandom.Mix(uint64 (int64 seed) * 0x9E3779B97F4A7C15UL ^^^ SeededRandom.Hash key))

    member _.NextUInt64() =
        state <- state + 0x9E3779B97F4A7C15UL
        SeededRandom.Mix state

    /// Uniform in [0, 1).
    member r.NextDouble() = float (r.NextUInt64() >>> 11) * (1.0 / 9007199254740992.0)

    /// Uniform in [low, high).
    member r.Uniform(low: float, high: float) = low + (high - low) * r.NextDouble()

    /// Uniform integer in [0, n).
    member r.NextInt(n: int) = int ((r.NextUInt64() >>> 1) % uint64 n)

    /// Standard normal (Box-Muller, both values used).
    member r.NextGaussian() =
        if not (Double.IsNaN spare) then
            let v = spare
            spare <- nan
            v
        else
            let u1 = 1.0 - r.NextDouble()
            let u2 = r.NextDouble()
            let radius = sqrt (-2.0 * log u1)
            spare <- radius * sin (2.0 * Math.PI * u2)
            radius * cos (2.0 * Math.PI * u2)

    /// Fisher-Yates shuffle in place.
    member r.Shuffle(values: 'T[]) =
        for i in values.Length - 1 .. -1 .. 1 do
            let j = r.NextInt(i + 1)
            let t = values.[i]
            values.[i] <- values.[j]
            values.[j] <- t

/// How to divide a dataset; the CLI spelling of each case is given.
type SplitSpec =
    /// `official`: FSDD's (index 0-4 test, 5-49 train), or Speech Commands' list files (train/validation/test).
    | Official
    /// `speaker:NAME[,NAME]`: the named speakers are the test part, everyone else trains.
    | HoldOutSpeakers of speakers: string list
    /// `loso`: one fold per speaker, holding that speaker out.
    | LeaveOneSpeakerOut
    /// `fold:K[,K]`: the source's predefined folds K are the test part (UrbanSound8K; `fold:9,10` holds out two).
    | PredefinedFold of folds: int list
    /// `folds`: one fold per predefined fold (UrbanSound8K's 10-fold cross-validation).
    | PredefinedFolds
    /// `random:RATIO`: stratified random split, RATIO (in (0, 1)) of each label's items in the test part.
    | StratifiedRandom of testRatio: float
    /// `kfold:K`: stratified K-fold cross-validation (K >= 2).
    | StratifiedKFold of k: int

/// One way of dividing items: the parts are disjoint; for single splits they cover all items.
type SplitFold =
    { /// "train/test" for single splits; the held-out speaker, "fold{K}" otherwise.
      Name: string
      Train: Item[]
      /// The validation part: Speech Commands' own under the official split, else empty until
      /// `Split.withValidation` carves one out of the training part.
      Validation: Item[]
      Test: Item[] }

/// Dataset splits: FSDD official, speaker hold-out, leave-one-speaker-out, predefined folds, stratified
/// random and stratified k-fold. Every split is deterministic: items are ordered by Key before any seeded
/// shuffle, so the input order never matters.
module Split =

    let private fail fmt = Printf.kprintf (fun m -> raise (DatasetException m)) fmt

    let private byKey (items: Item[]) =
        items |> Array.sortWith (fun a b -> String.CompareOrdinal(a.Key, b.Key))

    let private single name (test: Item -> bool) (items: Item[]) =
        let sorted = byKey items
        { Name = name; Train = sorted |> Array.filter (test >> not); Validation = [||]; Test = sorted |> Array.filter test }

    let private syntax =
        "expected official, speaker:NAME[,NAME], loso, fold:K[,K], folds, random:RATIO or kfold:K"

    /// Parses the CLI spelling (`official|speaker:NAME[,NAME]|loso|fold:K[,K]|folds|random:RATIO|kfold:K`).
    /// Raises DatasetException naming the text and what was expected.
    let parse (text: string) : SplitSpec =
        let text = text.Trim()
        let kind, argument =
            match text.IndexOf ':' with
            | -1 -> text.ToLowerInvariant(), None
            | i -> text.Substring(0, i).Trim().ToLowerInvariant(), Some(text.Substring(i + 1).Trim())
        let integer (a: string) =
            match Int32.TryParse(a, NumberStyles.Integer, CultureInfo.InvariantCulture) with
            | true, v -> v
            | _ -> fail "split '%s': '%s' is not an integer (%s)" text a syntax
        match kind, argument with
        | "official", None -> Official
        | "loso", None -> LeaveOneSpeakerOut
        | "folds", None -> PredefinedFolds
        | "speaker", Some names ->
            let names = names.Split(',') |> Array.map (fun n -> n.Trim()) |> Array.filter (fun n -> n <> "") |> List.ofArray
            if names.IsEmpty then fail "split '%s': no speaker named (%s)" text syntax
            HoldOutSpeakers(List.distinct names)
        | "fold", Some ks ->
            let folds = ks.Split(',') |> Array.map (fun k -> k.Trim()) |> Array.filter (fun k -> k <> "") |> Array.map integer |> Array.distinct |> List.ofArray
            if folds.IsEmpty then fail "split '%s': no fold named (%s)" text syntax
            PredefinedFold folds
        | "kfold", Some k ->
            let k = integer k
            if k < 2 then fail "split '%s': k-fold needs K >= 2, was %d" text k
            StratifiedKFold k
        | "random", Some r ->
            match Double.TryParse(r, NumberStyles.Float, CultureInfo.InvariantCulture) with
            | true, v when v > 0.0 && v < 1.0 -> StratifiedRandom v
            | true, v -> fail "split '%s': the test ratio must lie strictly between 0 and 1, was %g" text v
            | _ -> fail "split '%s': '%s' is not a number (%s)" text r syntax
        | _ -> fail "split '%s' not understood: %s" text syntax

    /// The CLI spelling of a split (parse's inverse).
    let format (spec: SplitSpec) =
        match spec with
        | Official -> "official"
        | HoldOutSpeakers names -> "speaker:" + String.Join(",", names)
        | LeaveOneSpeakerOut -> "loso"
        | PredefinedFold ks -> "fold:" + String.Join(",", ks)
        | PredefinedFolds -> "folds"
        | StratifiedRandom r -> "random:" + r.ToString("R", CultureInfo.InvariantCulture)
        | StratifiedKFold k -> sprintf "kfold:%d" k

    /// FSDD's official split (index 0-4 test, 5-49 train) or, for Speech Commands, its list files
    /// (items' Subset: train / validation / test). Raises DatasetException when the items have neither.
    let official (items: Item[]) : SplitFold =
        if items |> Array.forall (fun i -> i.Subset.IsSome) && items.Length > 0 then
            let sorted = byKey items
            let part name = sorted |> Array.filter (fun i -> i.Subset = Some name)
            { Name = "train/test"; Train = part "train"; Validation = part "validation"; Test = part "test" }
        elif items |> Array.forall (fun i -> i.Index.IsSome && i.Speaker.IsSome) then
            single "train/test" (fun i -> i.Index.Value < 5) items
        else
            fail "the official split needs FSDD recordings (digit_speaker_index) or Speech Commands' validation_list.txt/testing_list.txt; use speaker:NAME, loso, fold:K, random:RATIO or kfold:K"

    let private knownSpeakers (items: Item[]) =
        let speakers = Dataset.speakers items
        if speakers.Length = 0 then fail "this dataset names no speakers, so it cannot be split by speaker"
        speakers

    /// Holds the named speakers out as the test part. Raises DatasetException for a speaker the items do
    /// not have, listing those they have.
    let holdOutSpeakers (names: string list) (items: Item[]) : SplitFold =
        let known = knownSpeakers items
        match names |> List.filter (fun n -> not (Array.contains n known)) with
        | [] -> ()
        | unknown -> fail "unknown speaker%s %s; the dataset's speakers are %s" (if unknown.Length > 1 then "s" else "") (String.Join(", ", unknown)) (String.Join(", ", known))
        let held = Set.ofList names
        single "train/test" (fun i -> i.Speaker |> Option.exists held.Contains) items

    /// One fold per speaker (sorted by name), named after the held-out speaker. Items without a speaker
    /// always train.
    let leaveOneSpeakerOut (items: Item[]) : SplitFold[] =
        knownSpeakers items
        |> Array.map (fun s -> single s (fun i -> i.Speaker = Some s) items)

    let private knownFolds (items: Item[]) =
        let folds = items |> Array.choose (fun i -> i.Fold) |> Array.distinct |> Array.sort
        if folds.Length = 0 then fail "this dataset has no predefined folds (a manifest fold column, as UrbanSound8K's)"
        folds

    /// The predefined folds `held` are the test part; the other folds train. Named "fold{K}" for one fold,
    /// "fold{K}+{K}" for several. Raises DatasetException for a fold the items do not have, listing theirs.
    let predefinedFold (held: int list) (items: Item[]) : SplitFold =
        let folds = knownFolds items
        match held |> List.filter (fun k -> not (Array.contains k folds)) with
        | [] -> ()
        | unknown -> fail "unknown fold%s %s; the dataset's folds are %s" (if unknown.Length > 1 then "s" else "") (String.Join(", ", unknown)) (String.Join(", ", folds))
        if held.IsEmpty then fail "no fold to hold out; the dataset's folds are %s" (String.Join(", ", folds))
        let set = Set.ofList held
        single ("fold" + String.Join("+", held)) (fun i -> i.Fold |> Option.exists set.Contains) items

    /// One fold per predefined fold, each named "fold{K}".
    let predefinedFolds (items: Item[]) : SplitFold[] =
        knownFolds items |> Array.map (fun k -> predefinedFold [ k ] items)

    /// Each label's items, ordered by key then shuffled by a generator seeded from (seed, label).
    let private shuffledByLabel (seed: int) (items: Item[]) =
        byKey items
        |> Array.groupBy (fun i -> i.Label)
        |> Array.sortWith (fun (a, _) (b, _) -> String.CompareOrdinal(a, b))
        |> Array.map (fun (label, group) ->
            SeededRandom.ForKey(seed, "split/" + label).Shuffle group
            group)

    /// Stratified random split: of each label's n items, round(n * testRatio) go to the test part (so
    /// label proportions hold within one item). Same seed, same split, whatever the items' order.
    let stratifiedRandom (seed: int) (testRatio: float) (items: Item[]) : SplitFold =
        if not (testRatio > 0.0 && testRatio < 1.0) then
            invalidArg (nameof testRatio) (sprintf "testRatio must lie strictly between 0 and 1, was %g" testRatio)
        let test =
            shuffledByLabel seed items
            |> Array.collect (fun group ->
                let n = int (Math.Round(float group.Length * testRatio, MidpointRounding.AwayFromZero))
                group.[.. n - 1])
            |> Array.map (fun i -> i.Key)
            |> Set.ofArray
        single "train/test" (fun i -> test.Contains i.Key) items

    /// Stratified k-fold: each label's shuffled items are dealt round-robin over the folds, continuing
    /// across labels, so every fold holds floor or ceil of n/k of each label and fold sizes differ by at
    /// most one. Folds are named "fold1".."foldK"; fold j's test part is its share.
    let stratifiedKFold (seed: int) (k: int) (items: Item[]) : SplitFold[] =
        if k < 2 then invalidArg (nameof k) (sprintf "k must be at least 2, was %d" k)
        if items.Length < k then fail "k-fold with K = %d needs at least %d items, the dataset has %d" k k items.Length
        let assignment = Collections.Generic.Dictionary<string, int>()
        let mutable position = 0
        for group in shuffledByLabel seed items do
            for item in group do
                assignment.[item.Key] <- position % k
                position <- position + 1
        Array.init k (fun j -> single (sprintf "fold%d" (j + 1)) (fun i -> assignment.[i.Key] = j) items)

    /// The split a dataset defines for itself: `official` for FSDD recordings or Speech Commands' list files,
    /// `folds` for predefined folds (UrbanSound8K's 10-fold protocol), else a stratified 20% test part.
    let defaultFor (source: DatasetSource) (items: Item[]) : SplitSpec =
        if items.Length > 0 && (source = Fsdd || items |> Array.forall (fun i -> i.Subset.IsSome)) then Official
        elif items |> Array.exists (fun i -> i.Fold.IsSome) then PredefinedFolds
        else StratifiedRandom 0.2

    /// The validation part of a fold: kept when the fold has one (Speech Commands' list), else `ratio` of the
    /// training part moved into it, stratified by label and seeded by (seed, fold name). Grouped by speaker when
    /// the training part names at least ceil(2 / ratio) speakers: whole speakers move (shuffled, until the part
    /// holds ratio of the items), so no speaker is in both parts; with fewer speakers whole-speaker groups cannot
    /// make a part near `ratio` (FSDD has 5 or 6), and items are stratified by label and speaker instead. Labels
    /// with a single training item keep it for training. Raises ArgumentException unless 0 < ratio < 1.
    let withValidation (seed: int) (ratio: float) (fold: SplitFold) : SplitFold =
        if not (ratio > 0.0 && ratio < 1.0) then
            invalidArg "validation" (sprintf "the validation ratio must lie strictly between 0 and 1, was %g" ratio)
        if fold.Validation.Length > 0 then fold
        else
            let train = byKey fold.Train
            let speakers = Dataset.speakers train
            let minimum = int (Math.Ceiling(2.0 / ratio))
            let chosen = Collections.Generic.HashSet<string>()
            let chosenItems = Collections.Generic.HashSet<string>()
            if speakers.Length >= minimum then
                let shuffled = Array.copy speakers
                SeededRandom.ForKey(seed, "validation/" + fold.Name).Shuffle shuffled
                let counts = train |> Array.countBy (fun i -> i.Speaker) |> dict
                let target = ratio * float train.Length
                let mutable taken = 0
                for s in shuffled do
                    if float taken < target then
                        chosen.Add s |> ignore
                        taken <- taken + counts.[Some s]
                // Items without a speaker are stratified by label on their own.
                for group in train |> Array.filter (fun i -> i.Speaker.IsNone) |> Array.groupBy (fun i -> i.Label) do
                    let items = snd group
                    SeededRandom.ForKey(seed, "validation/" + fold.Name + "/" + fst group).Shuffle items
                    let n = if items.Length < 2 then 0 else int (Math.Round(float items.Length * ratio, MidpointRounding.AwayFromZero))
                    for i in items.[.. n - 1] do chosenItems.Add i.Key |> ignore
            else
                for (label, speaker), items in train |> Array.groupBy (fun i -> i.Label, i.Speaker) |> Array.sortBy fst do
                    let items = Array.copy items
                    SeededRandom.ForKey(seed, sprintf "validation/%s/%s/%s" fold.Name label (defaultArg speaker "")).Shuffle items
                    let n = if items.Length < 2 then 0 else int (Math.Round(float items.Length * ratio, MidpointRounding.AwayFromZero))
                    for i in items.[.. n - 1] do chosenItems.Add i.Key |> ignore
            let isValidation (i: Item) =
                chosenItems.Contains i.Key || (i.Speaker |> Option.exists chosen.Contains)
            { fold with Train = train |> Array.filter (isValidation >> not); Validation = train |> Array.filter isValidation }

    /// Applies a split specification; single splits give one fold.
    let apply (seed: int) (spec: SplitSpec) (items: Item[]) : SplitFold[] =
        match spec with
        | Official -> [| official items |]
        | HoldOutSpeakers names -> [| holdOutSpeakers names items |]
        | LeaveOneSpeakerOut -> leaveOneSpeakerOut items
        | PredefinedFold ks -> [| predefinedFold ks items |]
        | PredefinedFolds -> predefinedFolds items
        | StratifiedRandom r -> [| stratifiedRandom seed r items |]
        | StratifiedKFold k -> stratifiedKFold seed k items
