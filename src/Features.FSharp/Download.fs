namespace Hybrid.Features

open System
open System.Formats.Tar
open System.IO
open System.IO.Compression
open System.Net.Http
open System.Reflection
open System.Security.Cryptography
open System.Threading.Tasks

/// Where FSDD is fetched from and what it must hash to.
type FsddSource =
    { /// The release archive (tar.gz) URL.
      Url: string
      /// Expected SHA-256 (lower-case hex) of every recording, keyed by its path in the release
      /// (`recordings/NAME.wav`). Every listed file must be present and match; no other recording may be.
      Hashes: Map<string, string>
      /// Folder the verified copy is kept in (and looked for in before downloading).
      CacheFolder: string }

/// A dataset Hybrid downloads as one archive verified by its SHA-256 before anything is extracted
/// (Speech Commands v0.02).
type ArchiveSource =
    { /// The name `--data` accepts for it (e.g. `speech-commands`).
      Name: string
      /// The name and version shown in messages (e.g. `Speech Commands v0.02`).
      Title: string
      /// The archive (tar.gz) URL.
      Url: string
      /// Expected SHA-256 (lower-case hex) of the whole archive.
      Sha256: string
      /// Most bytes the archive may expand to (stops decompression bombs).
      MaxExtractedBytes: int64
      /// A file, relative to the dataset root, whose presence marks an installed copy (Speech Commands:
      /// `validation_list.txt`).
      Marker: string
      /// Folder the verified copy is kept in (and looked for in before downloading).
      CacheFolder: string }

/// Fetching the Free Spoken Digit Dataset for users who have none: local path, user cache, else the v1.0.10
/// release archive, extracted safely, verified file by file against the shipped SHA-256 list and moved into
/// place atomically.
module Download =

    /// The FSDD release Hybrid verifies against.
    [<Literal>]
    let FsddVersion = "1.0.10"

    /// The public v1.0.10 release archive of FSDD.
    [<Literal>]
    let FsddUrl = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"

    /// Environment variable replacing FsddUrl (a mirror, or a local test server).
    [<Literal>]
    let UrlVariable = "HYBRID_FSDD_URL"

    /// Environment variable naming a local FSDD folder (the one holding recordings/).
    [<Literal>]
    let FsddVariable = "HYBRID_FSDD"

    /// Most bytes an archive may expand to (the release is about 30 MB): stops decompression bombs.
    let private maxExtractedBytes = 1L <<< 30

    /// Parses a `sha256sum` listing (`HEX  PATH` per line, `*PATH` for binary mode accepted) into path to
    /// lower-case hex. Raises DatasetException for a malformed line.
    let parseHashList (text: string) : Map<string, string> =
        text.Split('\n')
        |> Array.map (fun l -> l.Trim())
        |> Array.filter (fun l -> l <> "" && not (l.StartsWith "#"))
        |> Array.mapi (fun n line ->
            let space = line.IndexOf ' '
            let hex = if space > 0 then line.Substring(0, space) else line
            let path = if space > 0 then line.Substring(space).TrimStart(' ', '*') else ""
            if hex.Length <> 64 || path = "" || not (hex |> Seq.forall Uri.IsHexDigit) then
                raise (DatasetException(sprintf "SHA-256 list line %d is not 'HEX  PATH': %s" (n + 1) line))
            path.Replace('\\', '/'), hex.ToLowerInvariant())
        |> Map.ofArray

    /// The SHA-256 list of FSDD v1.0.10's 3,000 recordings, shipped inside this assembly.
    let fsddHashes: Lazy<Map<string, string>> =
        lazy (
            let name = "Hybrid.Features.fsdd-v1.0.10.sha256"
            match Assembly.GetExecutingAssembly().GetManifestResourceStream name with
            | null -> raise (DatasetException(sprintf "resource %s missing from Hybrid.Features" name))
            | stream ->
                use reader = new StreamReader(stream)
                parseHashList (reader.ReadToEnd()))

    /// The user's cache folder for Hybrid's downloads: $XDG_CACHE_HOME/hybrid, else ~/.cache/hybrid.
    let userCacheRoot () : string =
        let cache =
            match Environment.GetEnvironmentVariable "XDG_CACHE_HOME" with
            | null | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".cache")
            | dir -> dir
        Path.Combine(cache, "hybrid")

    /// The user cache folder for FSDD: $XDG_CACHE_HOME/hybrid/fsdd-1.0.10, else ~/.cache/hybrid/fsdd-1.0.10.
    let cacheFolder () : string = Path.Combine(userCacheRoot (), "fsdd-" + FsddVersion)

    /// The default source: FsddUrl (or $HYBRID_FSDD_URL), the shipped hashes, the user cache folder.
    let defaultSource () : FsddSource =
        { Url =
            match Environment.GetEnvironmentVariable UrlVariable with
            | null | "" -> FsddUrl
            | url -> url
          Hashes = fsddHashes.Value
          CacheFolder = cacheFolder () }

    /// True when the folder holds FSDD recordings (in recordings/ or directly).
    let holdsFsdd (dir: string) =
        let hasFsddWav d =
            Directory.Exists d
            && Directory.EnumerateFiles(d, "*.wav") |> Seq.exists (fun p -> (Dataset.tryParseFsddName (Path.GetFileName p |> nonNull)).IsSome)
        hasFsddWav (Path.Combine(dir, "recordings")) || hasFsddWav dir

    /// Checks a tar entry name and returns where it goes under `target` (`target` itself for `./`); raises DatasetException for a
    /// rooted path, a `..` component, or anything resolving outside `target`.
    let private entryDestination (target: string) (name: string) =
        let unsafe reason = raise (DatasetException(sprintf "archive entry '%s' rejected: %s" name reason))
        if name = "" then unsafe "empty name"
        if name.StartsWith "/" || name.StartsWith "\\" || Path.IsPathRooted name || name.Contains ':' then
            unsafe "absolute path"
        // `.` components (archives made with `tar -C DIR .` name everything `./...`) are dropped.
        let parts = name.Split([| '/'; '\\' |], StringSplitOptions.RemoveEmptyEntries) |> Array.filter (fun p -> p <> ".")
        if parts |> Array.exists (fun p -> p = "..") then unsafe "'..' would leave the target folder"
        let root = Path.GetFullPath target |> Path.TrimEndingDirectorySeparator
        if parts.Length = 0 then root
        else
            let full = Path.GetFullPath(Path.Combine(root, String.Join(string Path.DirectorySeparatorChar, parts)))
            if not (full.StartsWith(root + string Path.DirectorySeparatorChar, StringComparison.Ordinal)) then
                unsafe "resolves outside the target folder"
            full

    /// Extracts a gzip-compressed tar stream into `target` (created if missing), refusing to expand beyond
    /// `limit` bytes. Only directories and regular files are written; a link, device, rooted path, `..`
    /// component or duplicate file rejects the archive with DatasetException naming the entry, and nothing is
    /// ever written outside `target`.
    let extractTarGzWithin (limit: int64) (archive: Stream) (target: string) : unit =
        Directory.CreateDirectory target |> ignore
        use gzip = new GZipStream(archive, CompressionMode.Decompress)
        use reader = new TarReader(gzip)
        let mutable written = 0L
        let mutable entry = reader.GetNextEntry()
        while not (isNull entry) do
            let e = nonNull entry
            match e.EntryType with
            | TarEntryType.GlobalExtendedAttributes
            | TarEntryType.ExtendedAttributes -> ()
            | TarEntryType.Directory ->
                Directory.CreateDirectory(entryDestination target e.Name) |> ignore
            | TarEntryType.RegularFile
            | TarEntryType.V7RegularFile
            | TarEntryType.ContiguousFile ->
                let destination = entryDestination target e.Name
                if destination = (Path.GetFullPath target |> Path.TrimEndingDirectorySeparator) then
                    raise (DatasetException(sprintf "archive entry '%s' rejected: a file cannot replace the target folder" e.Name))
                written <- written + e.Length
                if written > limit then
                    raise (DatasetException(sprintf "archive expands beyond %d bytes at '%s'; refusing it" limit e.Name))
                Directory.CreateDirectory(Path.GetDirectoryName destination |> nonNull) |> ignore
                use output = new FileStream(destination, FileMode.CreateNew, FileAccess.Write)
                match e.DataStream with
                | null -> ()
                | data -> data.CopyTo output
            | TarEntryType.SymbolicLink
            | TarEntryType.HardLink ->
                raise (DatasetException(sprintf "archive entry '%s' rejected: links are not extracted (points to '%s')" e.Name e.LinkName))
            | other -> raise (DatasetException(sprintf "archive entry '%s' rejected: entry type %A is not a file or folder" e.Name other))
            entry <- reader.GetNextEntry()

    /// extractTarGzWithin with FSDD's limit (1 GiB; the release is about 30 MB).
    let extractTarGz (archive: Stream) (target: string) : unit = extractTarGzWithin maxExtractedBytes archive target

    let private sha256 (path: string) =
        use stream = File.OpenRead path
        Convert.ToHexStringLower(SHA256.HashData stream)

    /// Checks the recordings under `dir` against the hash list: every listed file present with its hash,
    /// no unlisted WAV in recordings/. Raises DatasetException naming the first offending file.
    let verify (hashes: Map<string, string>) (dir: string) : unit =
        for KeyValue (relative, expected) in hashes do
            let path = Path.Combine(dir, relative)
            if not (File.Exists path) then
                raise (DatasetException(sprintf "%s: missing from the downloaded FSDD (listed in the v%s SHA-256 list)" relative FsddVersion))
            let actual = sha256 path
            if actual <> expected then
                raise (DatasetException(sprintf "%s: SHA-256 %s does not match the v%s list (%s): the download is corrupt" relative actual FsddVersion expected))
        let recordings = Path.Combine(dir, "recordings")
        if Directory.Exists recordings then
            for path in Directory.EnumerateFiles(recordings, "*.wav", SearchOption.AllDirectories) do
                let relative = Path.GetRelativePath(dir, path).Replace(Path.DirectorySeparatorChar, '/')
                if not (hashes.ContainsKey relative) then
                    raise (DatasetException(sprintf "%s: not in the v%s SHA-256 list; refusing an unexpected file" relative FsddVersion))

    let private offline (url: string) (reason: string) (cache: string) =
        DatasetException(
            sprintf
                "could not download FSDD v%s from %s (%s). If you are offline, point Hybrid at a local copy: pass --data DIR or set %s=DIR (the folder holding recordings/), or unpack the release into %s."
                FsddVersion url reason FsddVariable cache)

    let private client = lazy (new HttpClient(Timeout = TimeSpan.FromMinutes 10.0))

    /// Downloads `url` into the file `destination` (which must not exist), reporting progress as `title`, and
    /// returns the SHA-256 (lower-case hex) of the bytes written. Network failures and HTTP error statuses are
    /// raised as `offline url reason`.
    let private fetchUrl (url: string) (title: string) (offline: string -> string -> exn) (destination: string) : string =
        try
            use response = client.Value.GetAsync(url, HttpCompletionOption.ResponseHeadersRead).GetAwaiter().GetResult()
            if not response.IsSuccessStatusCode then
                raise (offline url (sprintf "HTTP %d %s" (int response.StatusCode) response.ReasonPhrase))
            // Progress in KiB: a bar on a terminal, a line every 10% when standard error is redirected.
            let totalKiB = response.Content.Headers.ContentLength |> Option.ofNullable |> Option.map (fun b -> int ((b + 1023L) / 1024L))
            let progress =
                match totalKiB with
                | Some kib -> Progress.create (sprintf "download %s (KiB)" title) kib
                | None -> Progress.silent
            use input = response.Content.ReadAsStream()
            use output = new FileStream(destination, FileMode.CreateNew, FileAccess.Write)
            use hash = IncrementalHash.CreateHash HashAlgorithmName.SHA256
            let buffer = Array.zeroCreate<byte> 81920
            let mutable total' = 0L
            let mutable read = input.Read(buffer, 0, buffer.Length)
            while read > 0 do
                output.Write(buffer, 0, read)
                hash.AppendData(buffer, 0, read)
                total' <- total' + int64 read
                progress.Report(int (total' / 1024L))
                read <- input.Read(buffer, 0, buffer.Length)
            progress.Finish()
            eprintfn "downloaded %.1f MB from %s" (float total' / 1048576.0) url
            Convert.ToHexStringLower(hash.GetHashAndReset())
        with
        | :? HttpRequestException as e -> raise (offline url e.Message)
        | :? TaskCanceledException -> raise (offline url "timed out")
        | :? IOException as e when not (e :? FileNotFoundException) -> raise (offline url e.Message)

    let private fetch (source: FsddSource) (destination: string) =
        fetchUrl source.Url "FSDD" (fun url reason -> offline url reason source.CacheFolder) destination |> ignore

    /// The folder under an extracted archive that holds recordings/: the top itself, or its single sub-folder
    /// (GitHub archives wrap everything in `free-spoken-digit-dataset-1.0.10/`).
    let private datasetRoot (extracted: string) =
        if Directory.Exists(Path.Combine(extracted, "recordings")) then extracted
        else
            match Directory.GetDirectories extracted with
            | [| only |] when Directory.Exists(Path.Combine(only, "recordings")) -> only
            | _ -> raise (DatasetException "the downloaded archive holds no recordings/ folder")

    let private deleteQuietly (path: string) =
        try
            if Directory.Exists path then Directory.Delete(path, true)
            elif File.Exists path then File.Delete path
        with _ -> ()

    /// Downloads, extracts (into a temporary sibling of the cache folder), verifies and moves the release
    /// into source.CacheFolder. Returns the cache folder.
    let private install (source: FsddSource) =
        let target = Path.GetFullPath source.CacheFolder |> Path.TrimEndingDirectorySeparator
        let parent = Path.GetDirectoryName target |> nonNull
        Directory.CreateDirectory parent |> ignore
        if Directory.Exists target && not (Seq.isEmpty (Directory.EnumerateFileSystemEntries target)) then
            raise (DatasetException(sprintf "%s exists but holds no FSDD recordings; remove it or pass --data DIR" target))
        let stamp = Guid.NewGuid().ToString("N")
        let archive = Path.Combine(parent, sprintf ".fsdd-%s-%s.tar.gz" FsddVersion stamp)
        let temp = Path.Combine(parent, sprintf ".fsdd-%s-%s.tmp" FsddVersion stamp)
        try
            fetch source archive
            do
                use stream = File.OpenRead archive
                try
                    extractTarGz stream temp
                with
                | :? InvalidDataException as e -> raise (DatasetException(sprintf "the archive from %s is not a valid tar.gz: %s" source.Url e.Message, e))
            let root = datasetRoot temp
            verify source.Hashes root
            if Directory.Exists target then Directory.Delete target
            try
                Directory.Move(root, target)
            with :? IOException when holdsFsdd target -> ()
            eprintfn "FSDD v%s verified (%d recordings) in %s" FsddVersion source.Hashes.Count target
            target
        finally
            deleteQuietly archive
            deleteQuietly temp

    /// Finds or fetches FSDD from a given source: `path` (when given and holding recordings), else
    /// source.CacheFolder, else the archive at source.Url, installed into source.CacheFolder. Returns the
    /// folder holding recordings/. Raises DatasetException when offline (saying how to point at a local copy),
    /// for an archive entry that would escape the folder or is a link, and for a recording whose SHA-256
    /// does not match (naming it).
    let ensureFsddFrom (source: FsddSource) (path: string option) : string =
        match path |> Option.filter (fun p -> p <> "") with
        | Some p when holdsFsdd p -> Path.GetFullPath p
        | given ->
            given |> Option.iter (fun p -> eprintfn "%s holds no FSDD recordings; looking in %s" p source.CacheFolder)
            if holdsFsdd source.CacheFolder then Path.GetFullPath source.CacheFolder
            else install source

    /// ensureFsddFrom (defaultSource ()) with `path`, or $HYBRID_FSDD when no path is given.
    let ensureFsdd (path: string option) : string =
        let path =
            match path with
            | Some _ -> path
            | None -> Environment.GetEnvironmentVariable FsddVariable |> Option.ofObj
        ensureFsddFrom (defaultSource ()) path

    /// The public Speech Commands v0.02 archive (about 2.3 GB, CC BY 4.0).
    [<Literal>]
    let SpeechCommandsUrl = "https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz"

    /// Environment variable replacing SpeechCommandsUrl (a mirror, or a local test server).
    [<Literal>]
    let SpeechCommandsUrlVariable = "HYBRID_SPEECH_COMMANDS_URL"

    /// Reads a one-entry SHA-256 list shipped inside this assembly (`HEX  FILE`) and returns the hex.
    let private shippedArchiveHash (resource: string) =
        match Assembly.GetExecutingAssembly().GetManifestResourceStream("Hybrid.Features." + resource) with
        | null -> raise (DatasetException(sprintf "resource %s missing from Hybrid.Features" resource))
        | stream ->
            use reader = new StreamReader(stream)
            match parseHashList (reader.ReadToEnd()) |> Map.toList with
            | [ _, hex ] -> hex
            | entries -> raise (DatasetException(sprintf "resource %s lists %d archives, expected one" resource entries.Length))

    /// Speech Commands v0.02 (SpeechCommandsUrl or $HYBRID_SPEECH_COMMANDS_URL), verified against the SHA-256
    /// shipped in speech-commands-v0.02.sha256, kept in the user cache folder (speech-commands-0.02).
    let speechCommandsSource () : ArchiveSource =
        { Name = "speech-commands"
          Title = "Speech Commands v0.02"
          Url =
            match Environment.GetEnvironmentVariable SpeechCommandsUrlVariable with
            | null | "" -> SpeechCommandsUrl
            | url -> url
          Sha256 = shippedArchiveHash "speech-commands-v0.02.sha256"
          MaxExtractedBytes = 8L <<< 30
          Marker = "validation_list.txt"
          CacheFolder = Path.Combine(userCacheRoot (), "speech-commands-0.02") }

    /// The folder under an extracted archive that holds the marker: the top itself, or its single sub-folder.
    let private rootWith (source: ArchiveSource) (extracted: string) =
        if File.Exists(Path.Combine(extracted, source.Marker)) then extracted
        else
            match Directory.GetDirectories extracted with
            | [| only |] when File.Exists(Path.Combine(only, source.Marker)) -> only
            | _ -> raise (DatasetException(sprintf "the %s archive from %s holds no %s" source.Title source.Url source.Marker))

    let private archiveOffline (source: ArchiveSource) (url: string) (reason: string) =
        DatasetException(
            sprintf "could not download %s from %s (%s). If you are offline, download the archive elsewhere, unpack it and pass --data DIR (the folder holding %s), or unpack it into %s."
                source.Title url reason source.Marker source.CacheFolder)

    /// Finds or fetches a dataset verified by its archive's SHA-256: source.CacheFolder when it holds the marker,
    /// else the archive at source.Url, downloaded into a temporary sibling of the cache folder, checked against
    /// source.Sha256 before anything is extracted, extracted safely (no links, nothing outside the folder, at most
    /// source.MaxExtractedBytes) and moved into place in one rename. Returns the dataset's folder. Raises
    /// DatasetException when offline (saying how to point at a local copy), for a hash mismatch (naming both
    /// hashes), for an unsafe archive entry (naming it) and for an archive without the marker file.
    let ensureArchive (source: ArchiveSource) : string =
        let target = Path.GetFullPath source.CacheFolder |> Path.TrimEndingDirectorySeparator
        if File.Exists(Path.Combine(target, source.Marker)) then target
        else
            let parent = Path.GetDirectoryName target |> nonNull
            Directory.CreateDirectory parent |> ignore
            if Directory.Exists target && not (Seq.isEmpty (Directory.EnumerateFileSystemEntries target)) then
                raise (DatasetException(sprintf "%s exists but holds no %s; remove it or pass --data DIR" target source.Marker))
            let stamp = Guid.NewGuid().ToString("N")
            let archive = Path.Combine(parent, sprintf ".%s-%s.tar.gz" source.Name stamp)
            let temp = Path.Combine(parent, sprintf ".%s-%s.tmp" source.Name stamp)
            try
                let actual = fetchUrl source.Url source.Title (fun url reason -> archiveOffline source url reason :> exn) archive
                if actual <> source.Sha256 then
                    raise (DatasetException(sprintf "the %s archive from %s has SHA-256 %s, not the shipped %s: the download is corrupt or not that release; nothing was extracted" source.Title source.Url actual source.Sha256))
                do
                    use stream = File.OpenRead archive
                    try
                        extractTarGzWithin source.MaxExtractedBytes stream temp
                    with
                    | :? InvalidDataException as e -> raise (DatasetException(sprintf "the archive from %s is not a valid tar.gz: %s" source.Url e.Message, e))
                let root = rootWith source temp
                if Directory.Exists target then Directory.Delete target
                try
                    Directory.Move(root, target)
                with :? IOException when File.Exists(Path.Combine(target, source.Marker)) -> ()
                eprintfn "%s verified (SHA-256 %s) in %s" source.Title source.Sha256 target
                target
            finally
                deleteQuietly archive
                deleteQuietly temp

    /// Where each dataset `train`, `features` and `dataset` know comes from, for messages about a missing folder.
    let whereToGet =
        "FSDD is fetched when --data is left out (or --data fsdd); Speech Commands v0.02 with --data speech-commands. "
        + "UrbanSound8K (CC BY-NC, by request): https://urbansounddataset.weebly.com/urbansound8k.html (give the folder holding metadata/ and audio/). "
        + "GTZAN: http://marsyas.info/index.html (give the folder holding genres/). "
        + "ESC-50: https://github.com/karolpiczak/ESC-50 (clone or unpack it and give the folder holding meta/esc50.csv and audio/)."

    /// The dataset folder for a `--data` value: FSDD (ensureFsdd) when none is given; the path when it exists;
    /// a downloadable set's folder for its name (`fsdd`, `speech-commands`: found in the user cache or
    /// downloaded and verified). Raises DatasetException for anything else, naming the path and saying where each
    /// dataset comes from.
    let resolveData (data: string option) : string =
        match data |> Option.filter (fun d -> d <> "") with
        | None -> ensureFsdd None
        | Some d when Directory.Exists d || File.Exists d -> d
        | Some d when String.Equals(d, "fsdd", StringComparison.OrdinalIgnoreCase) -> ensureFsdd None
        | Some d when String.Equals(d, "speech-commands", StringComparison.OrdinalIgnoreCase) -> ensureArchive (speechCommandsSource ())
        | Some d -> raise (DatasetException(sprintf "%s: folder not found. %s" (Path.GetFullPath d) whereToGet))
