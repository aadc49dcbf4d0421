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

    /// The user cache folder for FSDD: $XDG_CACHE_HOME/hybrid/fsdd-1.0.10, else ~/.cache/hybrid/fsdd-1.0.10.
    let cacheFolder () : string =
        let cache =
            match Environment.GetEnvironmentVariable "XDG_CACHE_HOME" with
            | null | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".cache")
            | dir -> dir
        Path.Combine(cache, "hybrid", "fsdd-" + FsddVersion)

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

    /// Checks a tar entry name and returns where it goes under `target`; raises DatasetException for a
    /// rooted path, a `..` component, or anything resolving outside `target`.
    let private entryDestination (target: string) (name: string) =
        let unsafe reason = raise (DatasetException(sprintf "archive entry '%s' rejected: %s" name reason))
        if name = "" then unsafe "empty name"
        if name.StartsWith "/" || name.StartsWith "\\" || Path.IsPathRooted name || name.Contains ':' then
            unsafe "absolute path"
        let parts = name.Split([| '/'; '\\' |], StringSplitOptions.RemoveEmptyEntries)
        if parts |> Array.exists (fun p -> p = "..") then unsafe "'..' would leave the target folder"
        let root = Path.GetFullPath target |> Path.TrimEndingDirectorySeparator
        let full = Path.GetFullPath(Path.Combine(root, String.Join(string Path.DirectorySeparatorChar, parts)))
        if not (full.StartsWith(root + string Path.DirectorySeparatorChar, StringComparison.Ordinal)) then
            unsafe "resolves outside the target folder"
        full

    /// Extracts a gzip-compressed tar stream into `target` (created if missing). Only directories and
    /// regular files are written; a link, device, rooted path, `..` component or duplicate file rejects the
    /// archive with DatasetException naming the entry, and nothing is ever written outside `target`.
    let extractTarGz (archive: Stream) (target: string) : unit =
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
                written <- written + e.Length
                if written > maxExtractedBytes then
                    raise (DatasetException(sprintf "archive expands beyond %d bytes at '%s'; refusing it" maxExtractedBytes e.Name))
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

    /// Downloads `url` into the file `destination`, reporting progress.
    let private fetch (source: FsddSource) (destination: string) =
        try
            use response = client.Value.GetAsync(source.Url, HttpCompletionOption.ResponseHeadersRead).GetAwaiter().GetResult()
            if not response.IsSuccessStatusCode then
                raise (offline source.Url (sprintf "HTTP %d %s" (int response.StatusCode) response.ReasonPhrase) source.CacheFolder)
            // Progress in KiB: a bar on a terminal, a line every 10% when standard error is redirected.
            let totalKiB = response.Content.Headers.ContentLength |> Option.ofNullable |> Option.map (fun b -> int ((b + 1023L) / 1024L))
            let progress =
                match totalKiB with
                | Some kib -> Progress.create "download FSDD (KiB)" kib
                | None -> Progress.silent
            use input = response.Content.ReadAsStream()
            use output = new FileStream(destination, FileMode.CreateNew, FileAccess.Write)
            let buffer = Array.zeroCreate<byte> 81920
            let mutable total' = 0L
            let mutable read = input.Read(buffer, 0, buffer.Length)
            while read > 0 do
                output.Write(buffer, 0, read)
                total' <- total' + int64 read
                progress.Report(int (total' / 1024L))
                read <- input.Read(buffer, 0, buffer.Length)
            progress.Finish()
            eprintfn "downloaded %.1f MB from %s" (float total' / 1048576.0) source.Url
        with
        | :? HttpRequestException as e -> raise (offline source.Url e.Message source.CacheFolder)
        | :? TaskCanceledException -> raise (offline source.Url "timed out" source.CacheFolder)
        | :? IOException as e when not (e :? FileNotFoundException) -> raise (offline source.Url e.Message source.CacheFolder)

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
