namespace Hybrid.Features

open System
open System.Collections.Generic
open System.Globalization
open System.IO
open System.Text
open System.Text.RegularExpressions
open System.Runtime.ExceptionServices
open System.Threading.Tasks

/// Where a dataset's items were found.
type DatasetSource =
    /// The Free Spoken Digit Dataset: `recordings/{digit}_{speaker}_{index}.wav` (or the files directly in
    /// the folder) with an optional `speakers.csv`.
    | Fsdd
    /// One sub-folder per class (GTZAN genres, Speech Commands words).
    | FolderPerClass
    /// A CSV manifest with path and label columns (UrbanSound8K's metadata file, for one); the path of the manifest.
    | Manifest of manifestPath: string
    /// Several datasets read as one (Dataset.merge): the name each source's items are prefixed with.
    | Merged of names: string list

/// One labelled recording whose header was read and found usable.
type Item =
    { /// Full path of the audio file (any format AudioFile reads).
      Path: string
      /// Stable identifier: the path relative to the dataset root, with '/' separators. Seeds per-item
      /// randomness (augmentation), so results do not depend on order or threads.
      Key: string
      /// Class name (FSDD: the digit "0".."9").
      Label: string
      /// Position of Label in the dataset's sorted Labels.
      LabelIndex: int
      /// Speaker, where the source names one (FSDD, Speech Commands, a manifest's speaker column).
      Speaker: string option
      /// Predefined fold, where the source has one (UrbanSound8K's fold 1-10).
      Fold: int option
      /// Recording index, where the source has one (FSDD's 0-49, Speech Commands' nohash index, GTZAN's number).
      Index: int option
      /// Predefined subset from the source: "train", "validation" or "test" (Speech Commands' list files).
      Subset: string option
      /// Sample rate in Hz, from the header.
      SampleRate: int
      /// Channel count, from the header.
      Channels: int
      /// Frames (samples per channel), from the header.
      Frames: int64 }
    /// Length in seconds.
    member x.Duration = float x.Frames / float x.SampleRate

/// A file the scan left out, and why.
type SkippedFile =
    { /// Full path of the file.
      Path: string
      /// What was wrong with it (the reader's problem text, or why its name or manifest row was unusable).
      Reason: string }

/// A scanned dataset: every usable item and every skipped file.
type Dataset =
    { /// The folder (or manifest's folder) the dataset was opened from, as a full path.
      Root: string
      /// How the items were found.
      Source: DatasetSource
      /// Class names sorted ordinally; an item's LabelIndex indexes this array. FSDD: always "0".."9".
      Labels: string[]
      /// Usable items, sorted by Key.
      Items: Item[]
      /// Files that were left out, sorted by path, each with its reason.
      Skipped: SkippedFile[]
      /// Files that are used despite a problem the reader worked around (a truncated recording: the whole
      /// frames present are used), sorted by path, each with the reader's warning. Strict scans refuse them.
      Warnings: SkippedFile[]
      /// Background-noise recordings offered for augmentation (Speech Commands' `_background_noise_`).
      NoiseFiles: string[]
      /// Speaker metadata from FSDD's speakers.csv: speaker name to column name to value (empty when absent).
      SpeakerInfo: Map<string, Map<string, string>> }

/// Which manifest columns hold what (names matched case-insensitively).
type ManifestColumns =
    { /// The file path or file name column (UrbanSound8K: slice_file_name).
      PathColumn: string
      /// The class name column (UrbanSound8K: class).
      LabelColumn: string
      /// Optional speaker column.
      SpeakerColumn: string option
      /// Optional integer fold column (UrbanSound8K: fold).
      FoldColumn: string option }

/// A file found by a source, before its header is checked.
type internal Candidate =
    { Path: string
      Key: string
      Label: string
      Speaker: string option
      Fold: int option
      Index: int option
      Subset: string option }

/// Minimal RFC 4180 CSV reading (quoted fields, doubled quotes, CRLF or LF).
module internal Csv =
    /// Parses text into rows of fields; blank lines are dropped.
    let parse (text: string) : string[][] =
        let rows = List<string[]>()
        let fields = List<string>()
        let field = StringBuilder()
        let mutable quoted = false
        let mutable i = 0
        let endRow () =
            fields.Add(field.ToString())
            field.Clear() |> ignore
            if not (fields.Count = 1 && fields.[0].Length = 0) then rows.Add(fields.ToArray())
            fields.Clear()
        while i < text.Length do
            let c = text.[i]
            if quoted then
                if c = '"' then
                    if i + 1 < text.Length && text.[i + 1] = '"' then
                        field.Append('"') |> ignore
                        i <- i + 1
                    else quoted <- false
                else field.Append(c) |> ignore
            else
                match c with
                | '"' -> quoted <- true
                | ',' ->
                    fields.Add(field.ToString())
                    field.Clear() |> ignore
                | '\r' -> ()
                | '\n' -> endRow ()
                | _ -> field.Append(c) |> ignore
            i <- i + 1
        if field.Length > 0 || fields.Count > 0 then endRow ()
        rows.ToArray()

/// Opening dataset folders (FSDD, folder-per-class, CSV manifest), scanning headers, and streaming audio.
module Dataset =

    let private fsddName =
        Regex(@"^(\d)_(.+)_(\d+)\.wav$", RegexOptions.IgnoreCase ||| RegexOptions.CultureInvariant)

    let private speechCommandsName =
        Regex(@"^([0-9a-f]+)_nohash_(\d+)\.[A-Za-z0-9]+$", RegexOptions.IgnoreCase ||| RegexOptions.CultureInvariant)

    let private numberedName =
        Regex(@"\.(\d+)\.[A-Za-z0-9]+$", RegexOptions.IgnoreCase ||| RegexOptions.CultureInvariant)

    /// Audio files are picked by extension (AudioFile.supportedExtensions: WAV, AU, AIFF, FLAC, MP3, Ogg).
    let private isAudio (path: string) = AudioFile.isSupported path

    let private audioFiles (dir: string) (recursive: bool) =
        let option = if recursive then SearchOption.AllDirectories else SearchOption.TopDirectoryOnly
        Directory.EnumerateFiles(dir, "*", option) |> Seq.filter isAudio |> Seq.toArray |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))

    let private keyOf (root: string) (path: string) =
        Path.GetRelativePath(root, path).Replace(Path.DirectorySeparatorChar, '/')

    let private fileName (path: string) =
        match Path.GetFileName path with
        | null -> path
        | name -> name

    /// Parses an FSDD file name `{digit}_{speaker}_{index}.wav` into (digit, speaker, index).
    let tryParseFsddName (name: string) : (int * string * int) option =
        let m = fsddName.Match name
        if m.Success then
            match Int32.TryParse(m.Groups.[3].Value, NumberStyles.None, CultureInfo.InvariantCulture) with
            | true, index -> Some(int m.Groups.[1].Value, m.Groups.[2].Value, index)
            | _ -> None
        else None

    /// The FSDD digits, the labels of every FSDD dataset whatever digits its files hold.
    let fsddLabels = Array.init 10 string

    /// The folder holding FSDD's recordings: `dir/recordings` when it exists, else `dir` when any WAV file
    /// directly in it is FSDD-named.
    let private fsddRecordings (dir: string) =
        let sub = Path.Combine(dir, "recordings")
        if Directory.Exists sub then Some sub
        elif audioFiles dir false |> Array.exists (fun p -> (tryParseFsddName (fileName p)).IsSome) then Some dir
        else None

    let private readSpeakerInfo (dir: string) =
        let path = Path.Combine(dir, "speakers.csv")
        if File.Exists path then
            match Csv.parse (File.ReadAllText path) |> List.ofArray with
            | header :: rows when header.Length > 1 ->
                rows
                |> List.filter (fun r -> r.Length = header.Length && r.[0].Trim() <> "")
                |> List.map (fun r ->
                    r.[0].Trim(), (Seq.zip header.[1..] r.[1..] |> Seq.map (fun (h, v) -> h.Trim(), v.Trim()) |> Map.ofSeq))
                |> Map.ofList
            | _ -> Map.empty
        else Map.empty

    let private fsddCandidates (root: string) (recordings: string) =
        let candidates = List<Candidate>()
        let skipped = List<SkippedFile>()
        for path in audioFiles recordings false do
            match tryParseFsddName (fileName path) with
            | Some (digit, speaker, index) ->
                candidates.Add
                    { Path = path; Key = keyOf root path; Label = string digit; Speaker = Some speaker
                      Fold = None; Index = Some index; Subset = None }
            | None ->
                skipped.Add
                    { Path = path
                      Reason = "file name does not follow FSDD's {digit}_{speaker}_{index}.wav" }
        candidates.ToArray(), skipped.ToArray()

    /// The sub-folder name Speech Commands uses for its background-noise recordings.
    [<Literal>]
    let BackgroundNoiseFolder = "_background_noise_"

    let private classFolders (root: string) =
        Directory.GetDirectories root
        |> Array.filter (fun d ->
            let name = fileName d
            not (name.StartsWith "_" || name.StartsWith ".") && not (Array.isEmpty (audioFiles d true)))
        |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))

    let private readList (root: string) (name: string) =
        let path = Path.Combine(root, name)
        if File.Exists path then
            File.ReadAllLines path
            |> Array.map (fun l -> l.Trim().Replace('\\', '/'))
            |> Array.filter (fun l -> l <> "")
            |> HashSet
            |> Some
        else None

    let private folderCandidates (root: string) (folders: string[]) =
        let validation = readList root "validation_list.txt"
        let testing = readList root "testing_list.txt"
        let hasLists = validation.IsSome || testing.IsSome
        let within (set: HashSet<string> option) key = set |> Option.exists (fun s -> s.Contains key)
        [| for dir in folders do
               let label = fileName dir
               for path in audioFiles dir true do
                   let key = keyOf root path
                   let name = fileName path
                   let speech = speechCommandsName.Match name
                   let numbered = numberedName.Match name
                   let number (text: string) =
                       match Int32.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture) with
                       | true, v -> Some v
                       | _ -> None
                   let speaker, index =
                       if speech.Success then Some speech.Groups.[1].Value, number speech.Groups.[2].Value
                       elif numbered.Success then None, number numbered.Groups.[1].Value
                       else None, None
                   let subset =
                       if not hasLists then None
                       elif within testing key then Some "test"
                       elif within validation key then Some "validation"
                       else Some "train"
                   { Path = path; Key = key; Label = label; Speaker = speaker; Fold = None; Index = index; Subset = subset } |]

    let private matchColumn (header: string[]) (names: string list) =
        names
        |> List.tryPick (fun n -> header |> Array.tryFindIndex (fun h -> h.Trim().Equals(n, StringComparison.OrdinalIgnoreCase)))

    /// Guesses the column mapping of a manifest header: path from path/filepath/file_path/file/filename/
    /// file_name/fname/slice_file_name, label from label/class/category/genre/word, speaker from
    /// speaker/speaker_id/client_id, fold from fold. None when no path or label column is found.
    let detectColumns (header: string[]) : ManifestColumns option =
        let pick names = matchColumn header names |> Option.map (fun i -> header.[i].Trim())
        match pick [ "path"; "filepath"; "file_path"; "file"; "filename"; "file_name"; "fname"; "slice_file_name" ],
              pick [ "label"; "class"; "category"; "genre"; "word" ] with
        | Some p, Some l ->
            Some
                { PathColumn = p; LabelColumn = l
                  SpeakerColumn = pick [ "speaker"; "speaker_id"; "client_id" ]
                  FoldColumn = pick [ "fold" ] }
        | _ -> None

    /// The folder a manifest describes: the manifest's folder, or its parent when the manifest lies in
    /// `metadata/` (UrbanSound8K's layout) or `meta/` (ESC-50's).
    let private manifestRoot (manifestDir: string) =
        if String.Equals(fileName manifestDir, "metadata", StringComparison.OrdinalIgnoreCase)
           || String.Equals(fileName manifestDir, "meta", StringComparison.OrdinalIgnoreCase) then
            match Path.GetDirectoryName manifestDir with
            | null -> manifestDir
            | p -> p
        else manifestDir

    /// Audio files under a folder by file name, for manifests that list bare names of files lying in sub-folders
    /// (GTZAN's features CSVs); a name found more than once maps to None.
    let private audioByName (root: string) =
        lazy (
            let byName = Dictionary<string, string option>(StringComparer.Ordinal)
            for path in audioFiles root true do
                let name = fileName path
                byName.[name] <- if byName.ContainsKey name then None else Some path
            byName)

    /// Where a manifest entry's file is: as given (absolute, or relative to the manifest's folder or the
    /// dataset root), under UrbanSound8K's `audio/fold{F}/` or `audio/`, else, for a bare file name, the one
    /// audio file of that name anywhere under the root.
    let private resolveEntry (manifestDir: string) (root: string) (byName: Lazy<Dictionary<string, string option>>) (value: string) (fold: int option) =
        let value = value.Replace('\\', '/')
        let tries =
            [ if Path.IsPathRooted value then yield value
              for b in List.distinct [ manifestDir; root ] do
                  yield Path.Combine(b, value)
                  match fold with
                  | Some f -> yield Path.Combine(b, "audio", sprintf "fold%d" f, value)
                  | None -> ()
                  yield Path.Combine(b, "audio", value) ]
        match tries |> List.map Path.GetFullPath |> List.tryFind File.Exists with
        | Some path -> Ok path
        | None when not (value.Contains '/') ->
            match byName.Value.TryGetValue value with
            | true, Some path -> Ok path
            | true, None -> Error(sprintf "more than one file named %s under %s" value root)
            | _ -> Error "not found"
        | None -> Error "not found"

    let private manifestCandidates (manifestPath: string) (columns: ManifestColumns option) =
        let manifestPath = Path.GetFullPath manifestPath
        if not (File.Exists manifestPath) then
            raise (DatasetException(sprintf "%s: manifest not found" manifestPath))
        let manifestDir =
            match Path.GetDirectoryName manifestPath with
            | null -> "."
            | d -> d
        let rows = Csv.parse (File.ReadAllText manifestPath)
        if rows.Length = 0 then raise (DatasetException(sprintf "%s: manifest is empty (expected a header row)" manifestPath))
        let header = rows.[0]
        let columns =
            match columns with
            | Some c -> c
            | None ->
                match detectColumns header with
                | Some c -> c
                | None ->
                    raise (DatasetException(sprintf "%s: no path and label columns found in header [%s]; name them with a column mapping" manifestPath (String.Join(", ", header))))
        let index name =
            match matchColumn header [ name ] with
            | Some i -> i
            | None -> raise (DatasetException(sprintf "%s: column '%s' not found in header [%s]" manifestPath name (String.Join(", ", header))))
        let pathAt = index columns.PathColumn
        let labelAt = index columns.LabelColumn
        let speakerAt = columns.SpeakerColumn |> Option.map index
        let foldAt = columns.FoldColumn |> Option.map index
        let candidates = List<Candidate>()
        let skipped = List<SkippedFile>()
        let root = manifestRoot manifestDir
        let byName = audioByName root
        let labels = SortedSet<string>(StringComparer.Ordinal)
        for r in 1 .. rows.Length - 1 do
            let row = rows.[r]
            let line = r + 1
            let cell i = if i < row.Length then row.[i].Trim() else ""
            let described = sprintf "%s (line %d)" manifestPath line
            let path, label = cell pathAt, cell labelAt
            if path = "" || label = "" then
                skipped.Add { Path = described; Reason = sprintf "row has no %s" (if path = "" then "path" else "label") }
            else
                let fold =
                    foldAt
                    |> Option.map (fun i ->
                        match Int32.TryParse(cell i, NumberStyles.Integer, CultureInfo.InvariantCulture) with
                        | true, f -> Ok f
                        | _ -> Error(cell i))
                match fold with
                | Some (Error text) -> skipped.Add { Path = described; Reason = sprintf "fold '%s' is not an integer" text }
                | _ ->
                    let fold = fold |> Option.bind (function Ok f -> Some f | Error _ -> None)
                    labels.Add label |> ignore
                    match resolveEntry manifestDir root byName path fold with
                    | Ok full ->
                        let key = if full.StartsWith(root, StringComparison.Ordinal) then keyOf root full else full.Replace('\\', '/')
                        candidates.Add
                            { Path = full; Key = key; Label = label
                              Speaker = speakerAt |> Option.map cell |> Option.filter (fun s -> s <> "")
                              Fold = fold; Index = None; Subset = None }
                    | Error why ->
                        // Where the file was expected: UrbanSound8K's audio/fold{F}/ when the row has a fold and the
                        // root has an audio folder, else beside the manifest.
                        let expected =
                            match fold with
                            | Some f when Directory.Exists(Path.Combine(root, "audio")) -> Path.Combine(root, "audio", sprintf "fold%d" f, path)
                            | _ -> Path.Combine(manifestDir, path)
                        skipped.Add { Path = Path.GetFullPath expected; Reason = sprintf "listed in %s line %d but %s" manifestPath line why }
        root, candidates.ToArray(), skipped.ToArray(), Seq.toArray labels

    /// Reads one header and decodes every sample (AudioFile.inspect: damaged data, NaN and infinities are found
    /// here, not in training); Ok with its info (whose Warning a truncated file carries), or Error with why the file is
    /// unusable (strict: truncated too). Never raises for a file: an exception no reader anticipated is reported as the
    /// reason ("could not be read: TYPE: message"), so one bad file never stops a scan. The dataset scan and the
    /// cluster's shard workers (src/Cluster) check files with it, so both word a skip alike.
    let probe (strict: bool) (path: string) : Result<AudioFileInfo, string> =
        try
            let info = AudioFile.inspect strict path
            if info.Frames <= 0L then
                Error(match info.Warning with
                      | Some w -> sprintf "holds no audio frames (%s)" w
                      | None -> "holds no audio frames")
            elif info.SampleRate <= 0 then Error(sprintf "sample rate %d Hz is not positive" info.SampleRate)
            else Ok info
        with
        | :? AudioFormatException as e -> Error e.Problem
        | :? IOException as e -> Error e.Message
        | :? UnauthorizedAccessException as e -> Error e.Message
        | :? OperationCanceledException -> reraise ()
        | e -> Error(sprintf "could not be read: %s: %s" (e.GetType().Name) e.Message)

    let private failStrict (skipped: SkippedFile[]) =
        if skipped.Length > 0 then
            let first = skipped |> Array.minBy (fun s -> s.Path)
            raise (DatasetException(sprintf "%s: %s (strict mode stops at the first unusable file)" first.Path first.Reason))

    /// Checks every candidate's header in parallel and builds the dataset.
    let private build strict root source (labels: string[]) (candidates: Candidate[]) (skipped: SkippedFile[]) noise speakerInfo =
        if strict then failStrict skipped
        let probed = candidates |> Hybrid.Features.Threads.map (fun c -> c, probe strict c.Path)
        let bad =
            probed
            |> Array.choose (fun (c, r) ->
                match r with
                | Error reason -> Some { Path = c.Path; Reason = reason }
                | Ok _ -> None)
        let skipped = Array.append skipped bad |> Array.sortWith (fun a b -> String.CompareOrdinal(a.Path, b.Path))
        if strict then failStrict skipped
        let warnings =
            probed
            |> Array.choose (fun (c, r) ->
                match r with
                | Ok({ AudioFileInfo.Warning = Some w }) -> Some { Path = c.Path; Reason = w }
                | _ -> None)
            |> Array.sortWith (fun a b -> String.CompareOrdinal(a.Path, b.Path))
        let labelIndex = labels |> Array.mapi (fun i l -> l, i) |> dict
        let items =
            probed
            |> Array.choose (fun (c, r) ->
                match r with
                | Ok info ->
                    Some
                        { Path = c.Path; Key = c.Key; Label = c.Label; LabelIndex = labelIndex.[c.Label]
                          Speaker = c.Speaker; Fold = c.Fold; Index = c.Index; Subset = c.Subset
                          SampleRate = info.SampleRate; Channels = info.Channels; Frames = info.Frames }
                | Error _ -> None)
            |> Array.sortWith (fun a b -> String.CompareOrdinal(a.Key, b.Key))
        { Root = root; Source = source; Labels = labels; Items = items; Skipped = skipped; Warnings = warnings
          NoiseFiles = noise; SpeakerInfo = speakerInfo }

    let private existingFolder (path: string) =
        let full = Path.GetFullPath path
        if not (Directory.Exists full) then raise (DatasetException(sprintf "%s: folder not found" full))
        full

    /// Opens an FSDD folder: `recordings/{digit}_{speaker}_{index}.wav` (or such files directly in the folder)
    /// and an optional speakers.csv. Labels are the digits "0".."9"; each item has speaker and index.
    /// Wrongly named WAV files and unreadable headers are skipped with their reason (strict: DatasetException
    /// naming the first).
    let openFsdd (strict: bool) (path: string) : Dataset =
        let root = existingFolder path
        let recordings = Path.Combine(root, "recordings")
        let recordings = if Directory.Exists recordings then recordings else root
        let candidates, skipped = fsddCandidates root recordings
        build strict root Fsdd fsddLabels candidates skipped [||] (readSpeakerInfo root)

    /// Opens a folder with one sub-folder per class (GTZAN, Speech Commands). A folder whose only sub-folder holds
    /// the class folders (GTZAN's `genres/`) is opened at that sub-folder. Class names are the sub-folder
    /// names (sorted); folders starting with '_' or '.' are not classes, and `_background_noise_` becomes the
    /// dataset's NoiseFiles. Speech Commands' validation_list.txt / testing_list.txt, when present, set each
    /// item's Subset ("validation", "test", else "train"); `{speaker}_nohash_{n}.wav` names give speaker and index.
    let openFolderPerClass (strict: bool) (path: string) : Dataset =
        let root = existingFolder path
        // GTZAN unpacks as genres/GENRE/GENRE.000NN.wav: a lone folder holding the class folders is descended into.
        let root =
            match classFolders root with
            | [| only |] when (audioFiles only false).Length = 0 && (classFolders only).Length >= 2 && (audioFiles root false).Length = 0 -> only
            | _ -> root
        let folders = classFolders root
        let labels = folders |> Array.map fileName
        let noiseDir = Path.Combine(root, BackgroundNoiseFolder)
        let noise = if Directory.Exists noiseDir then audioFiles noiseDir true else [||]
        build strict root FolderPerClass labels (folderCandidates root folders) [||] noise Map.empty

    /// The audio files of a background-noise folder (any format a scan picks, searched recursively, ordinal order), as
    /// `train --noise DIR` offers them to `background:` augmentation. Raises DatasetException when the folder does not
    /// exist.
    let openNoiseFolder (dir: string) : string[] =
        if not (Directory.Exists dir) then raise (DatasetException(sprintf "%s: noise folder not found" (Path.GetFullPath dir)))
        audioFiles (Path.GetFullPath dir) true

    /// Opens a CSV manifest. Columns come from the mapping, or are detected from the header (see detectColumns:
    /// UrbanSound8K's slice_file_name / class / fold work as they are). An entry's file is looked for as given,
    /// relative to the manifest's folder and its parent, and under `audio/fold{F}/` there (UrbanSound8K's layout).
    /// Rows with a missing file, label or a non-integer fold are skipped with their reason.
    let openManifest (strict: bool) (columns: ManifestColumns option) (manifestPath: string) : Dataset =
        let root, candidates, skipped, labels = manifestCandidates manifestPath columns
        build strict root (Manifest(Path.GetFullPath manifestPath)) labels candidates skipped [||] Map.empty

    /// The manifest a folder describes itself with: the first CSV (by name) at its top, in `metadata/` or `meta/`
    /// whose header has path and label columns and at least one of whose entries is an existing file.
    let private findManifest (root: string) =
        [ root; Path.Combine(root, "metadata"); Path.Combine(root, "meta") ]
        |> List.filter Directory.Exists
        |> List.collect (fun d -> Directory.GetFiles(d, "*.csv") |> Array.sort |> List.ofArray)
        |> List.tryFind (fun f ->
            let header =
                use reader = new StreamReader(f)
                reader.ReadLine()
            match header with
            | null -> false
            | line when (detectColumns (Csv.parse line |> Array.tryHead |> Option.defaultValue [||])).IsNone -> false
            | _ ->
                try
                    let _, candidates, _, _ = manifestCandidates f None
                    candidates.Length > 0
                with :? DatasetException -> false)

    /// Opens a dataset, detecting its layout: a .csv path is a manifest; a folder with FSDD recordings is FSDD;
    /// a folder with a manifest CSV (at its top or in metadata/, naming files that exist) is that manifest; else
    /// a folder with class sub-folders is folder-per-class. Headers are checked in parallel; unusable files are
    /// listed in Skipped with their reason (files with NaN or infinite float samples: "non-finite samples"),
    /// or, when strict, the first raises DatasetException naming it. A truncated recording is used with the
    /// whole frames present and listed in Warnings; strict refuses it like an unusable file.
    /// A folder with no recognisable audio gives a dataset with no items.
    let openFolder (strict: bool) (path: string) : Dataset =
        if File.Exists path && String.Equals(Path.GetExtension path, ".csv", StringComparison.OrdinalIgnoreCase) then
            openManifest strict None path
        else
            let root = existingFolder path
            match fsddRecordings root with
            | Some _ -> openFsdd strict root
            | None ->
                match findManifest root with
                | Some manifest -> openManifest strict None manifest
                | None -> openFolderPerClass strict root

    /// Keeps the classes `labels` (in that order) and drops the others, or, with `other`, folds every other
    /// class into one class of that name placed last (Speech Commands' 12-class keyword task:
    /// `yes,no,up,down,left,right,on,off,stop,go` with `unknown`). Items keep their keys; LabelIndex follows the
    /// new Labels. Raises DatasetException naming a label the dataset lacks (listing its labels), a repeated
    /// label, an `other` name that is also among `labels`, or a selection that leaves fewer than two classes.
    let selectLabels (labels: string list) (other: string option) (dataset: Dataset) : Dataset =
        let known = Set.ofArray dataset.Labels
        let fail fmt = Printf.kprintf (fun m -> raise (DatasetException m)) fmt
        if labels.IsEmpty then fail "no label to keep; the dataset's labels are %s" (String.Join(", ", dataset.Labels))
        match labels |> List.filter (known.Contains >> not) with
        | [] -> ()
        | unknown -> fail "%s has no label%s %s; its labels are %s" dataset.Root (if unknown.Length > 1 then "s" else "") (String.Join(", ", unknown)) (String.Join(", ", dataset.Labels))
        if (List.distinct labels).Length <> labels.Length then fail "labels %s repeat a name" (String.Join(",", labels))
        match other with
        | Some o when List.contains o labels -> fail "the other-label '%s' is also one of the kept labels" o
        | Some o when String.IsNullOrWhiteSpace o -> fail "the other-label is empty"
        | _ -> ()
        let newLabels = Array.ofList (labels @ Option.toList other)
        if newLabels.Length < 2 then
            fail "keeping only '%s' leaves one class, and a classifier needs at least two: name another label or fold the rest into one with --other-label NAME" labels.Head
        let index = newLabels |> Array.mapi (fun i l -> l, i) |> dict
        let items =
            dataset.Items
            |> Array.choose (fun item ->
                match index.TryGetValue item.Label, other with
                | (true, i), _ -> Some { item with LabelIndex = i }
                | _, Some o -> Some { item with Label = o; LabelIndex = index.[o] }
                | _, None -> None)
        { dataset with Labels = newLabels; Items = items }

    /// The labels of `dataset` that no item carries, in label order (e.g. FSDD's digits absent from a subset, a class
    /// folder whose files were all skipped, `selectLabels`' other class when every item is a kept label).
    let emptyLabels (dataset: Dataset) : string list =
        let used = dataset.Items |> Array.map (fun i -> i.Label) |> set
        [ for l in dataset.Labels do if not (used.Contains l) then l ]

    /// The dataset without the labels no item carries (emptyLabels): Labels keeps the others in their order and
    /// LabelIndex follows; the dataset itself when every label has items.
    let withoutEmptyLabels (dataset: Dataset) : Dataset =
        match emptyLabels dataset with
        | [] -> dataset
        | empty ->
            let dropped = set empty
            let labels = dataset.Labels |> Array.filter (dropped.Contains >> not)
            let index = labels |> Array.mapi (fun i l -> l, i) |> dict
            { dataset with Labels = labels; Items = dataset.Items |> Array.map (fun item -> { item with LabelIndex = index.[item.Label] }) }

    /// Parses a label map `FROM=TO,FROM=TO,...` (e.g. `zero=0,one=1`): each dataset label FROM is read as TO. Raises
    /// DatasetException naming the bad entry for an entry that is not FROM=TO with both sides non-empty, or a FROM
    /// given twice.
    let parseLabelMap (text: string) : (string * string) list =
        let pairs =
            [ for entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries) ->
                match entry.Split('=', StringSplitOptions.TrimEntries) with
                | [| from; into |] when from <> "" && into <> "" -> from, into
                | _ -> raise (DatasetException(sprintf "label map '%s': entry '%s' is not FROM=TO (e.g. zero=0,one=1)" text entry)) ]
        if pairs.IsEmpty then raise (DatasetException(sprintf "label map '%s' holds no FROM=TO entry" text))
        match pairs |> List.countBy fst |> List.tryFind (fun (_, n) -> n > 1) with
        | Some (from, _) -> raise (DatasetException(sprintf "label map '%s' maps '%s' twice" text from))
        | None -> pairs

    /// The dataset with its labels renamed by `map` (FROM, TO): an item labelled FROM is labelled TO, other labels
    /// are kept; several labels mapped to one name become one class. Labels are then ordered as Dataset.openFolder
    /// orders them (ordinal) and LabelIndex follows. Raises DatasetException naming the labels of `map` the dataset
    /// does not have.
    let mapLabels (map: (string * string) list) (dataset: Dataset) : Dataset =
        let known = Set.ofArray dataset.Labels
        match map |> List.map fst |> List.filter (known.Contains >> not) with
        | [] -> ()
        | missing ->
            raise (DatasetException(sprintf "%s has no label%s %s to map; its labels are %s" dataset.Root (if missing.Length > 1 then "s" else "")
                                        (String.Join(", ", missing)) (String.Join(", ", dataset.Labels))))
        let rename = dict map
        let renamed (label: string) = match rename.TryGetValue label with | true, t -> t | _ -> label
        let labels = dataset.Labels |> Array.map renamed |> Array.distinct |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))
        let index = labels |> Array.mapi (fun i l -> l, i) |> dict
        { dataset with
            Labels = labels
            Items = dataset.Items |> Array.map (fun item -> let l = renamed item.Label in { item with Label = l; LabelIndex = index.[l] }) }

    /// Several datasets as one training set: each item's Key becomes `NAME/KEY` and its speaker `NAME:SPEAKER`
    /// (NAME: the source's name), so recordings and speakers of different sources never collide; the labels are the
    /// union (ordinal order, LabelIndex renumbered); skipped files, warnings and noise recordings are concatenated;
    /// Root lists the roots joined by " + ". Raises DatasetException when two sources share a name.
    let merge (sources: (string * Dataset) list) : Dataset =
        match sources |> List.countBy fst |> List.tryFind (fun (_, n) -> n > 1) with
        | Some (name, _) -> raise (DatasetException(sprintf "two datasets are named '%s'; give folders with different names" name))
        | None -> ()
        let labels = sources |> List.collect (fun (_, d) -> List.ofArray d.Labels) |> List.distinct |> Array.ofList |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))
        let index = labels |> Array.mapi (fun i l -> l, i) |> dict
        { Root = sources |> List.map (fun (_, d) -> d.Root) |> String.concat " + "
          Source = Merged(List.map fst sources)
          Labels = labels
          Items =
            [| for name, d in sources do
                 for item in d.Items ->
                     { item with Key = name + "/" + item.Key; Speaker = item.Speaker |> Option.map (fun s -> name + ":" + s); LabelIndex = index.[item.Label] } |]
          Skipped = sources |> List.map (fun (_, d) -> d.Skipped) |> Array.concat
          Warnings = sources |> List.map (fun (_, d) -> d.Warnings) |> Array.concat
          NoiseFiles = sources |> List.map (fun (_, d) -> d.NoiseFiles) |> Array.concat
          SpeakerInfo =
            Map.ofList [ for name, d in sources do for KeyValue(speaker, info) in d.SpeakerInfo -> name + ":" + speaker, info ] }

    /// The source name of an item of a merged dataset (the part of its Key before the first '/'), None for others.
    let sourceOf (dataset: Dataset) (item: Item) : string option =
        match dataset.Source with
        | Merged _ -> Some(item.Key.Substring(0, max 0 (item.Key.IndexOf '/')))
        | _ -> None

    /// Distinct speakers of the items, sorted.
    let speakers (items: Item[]) =
        items |> Array.choose (fun i -> i.Speaker) |> Array.distinct |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))

    /// Lazily loads items in batches of `batchSize` (the last may be shorter), each batch's items loaded in
    /// parallel, keeping at most `readAhead` batches loading ahead of the one being consumed: memory stays
    /// bounded by (readAhead + 1) * batchSize loaded values whatever the dataset's size. Order is kept.
    /// A load failure is raised when its batch is reached. Nothing is loaded until the sequence is iterated.
    let streamWith (readAhead: int) (batchSize: int) (load: Item -> 'T) (items: Item[]) : seq<(Item * 'T)[]> =
        if batchSize < 1 then invalidArg (nameof batchSize) (sprintf "batchSize must be at least 1, was %d" batchSize)
        if readAhead < 1 then invalidArg (nameof readAhead) (sprintf "readAhead must be at least 1, was %d" readAhead)
        seq {
            let batches = Array.chunkBySize batchSize items
            let pending = Queue<Task<(Item * 'T)[]>>()
            let mutable next = 0
            let start () =
                let batch = batches.[next]
                next <- next + 1
                pending.Enqueue(Task.Run(fun () -> batch |> Hybrid.Features.Threads.map (fun item -> item, load item)))
            try
                while next < batches.Length && pending.Count < readAhead do
                    start ()
                while pending.Count > 0 do
                    let task = pending.Dequeue()
                    let result =
                        try
                            task.GetAwaiter().GetResult()
                        with :? AggregateException as e ->
                            // A wrapped loader exception (AggregateException): raise the loader's own.
                            ExceptionDispatchInfo.Capture(e.Flatten().InnerExceptions.[0]).Throw()
                            Unchecked.defaultof<_>
                    if next < batches.Length then start ()
                    yield result
            finally
                for task in pending do
                    try task.Wait() with _ -> ()
        }

    /// streamWith with two batches read ahead.
    let stream (batchSize: int) (load: Item -> 'T) (items: Item[]) : seq<(Item * 'T)[]> =
        streamWith 2 batchSize load items
