module Hybrid.FeaturesTests.DownloadTests

open System
open System.Formats.Tar
open System.IO
open System.IO.Compression
open System.Net
open System.Net.Sockets
open System.Security.Cryptography
open System.Text
open System.Threading
open System.Threading.Tasks
open Expecto
open Hybrid.Features
open Hybrid.FeaturesTests.DatasetFixtures

/// A one-route HTTP server on 127.0.0.1 (an ephemeral port) answering every GET with the given status and
/// body; serves at most 8 connections and stops on Dispose.
type private LoopbackServer(status: int, body: byte[]) =
    let listener = new TcpListener(IPAddress.Loopback, 0)
    do listener.Start()
    let port = (listener.LocalEndpoint :?> IPEndPoint).Port
    let cancel = new CancellationTokenSource(TimeSpan.FromSeconds 30.0)
    let serve () =
        task {
            try
                for _ in 1 .. 8 do
                    use! client = listener.AcceptTcpClientAsync(cancel.Token)
                    use stream = client.GetStream()
                    let request = Array.zeroCreate<byte> 65536
                    let mutable seen = 0
                    let mutable finished = false
                    while not finished && seen < request.Length do
                        let! n = stream.ReadAsync(request, seen, request.Length - seen, cancel.Token)
                        seen <- seen + n
                        finished <- n = 0 || Encoding.ASCII.GetString(request, 0, seen).Contains "\r\n\r\n"
                    let reason = if status = 200 then "OK" else "Not Found"
                    let header =
                        sprintf "HTTP/1.1 %d %s\r\nContent-Length: %d\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n" status reason body.Length
                    do! stream.WriteAsync(Encoding.ASCII.GetBytes header, cancel.Token)
                    do! stream.WriteAsync(body, cancel.Token)
            with _ -> ()
        }
    let running = serve ()
    member _.Url = sprintf "http://127.0.0.1:%d/fsdd.tar.gz" port
    interface IDisposable with
        member _.Dispose() =
            cancel.Cancel()
            listener.Stop()
            try running.Wait(TimeSpan.FromSeconds 5.0) |> ignore with _ -> ()

/// A tar.gz holding the given entries: (name, Some bytes) is a file, (name, None) a folder.
let private tarGz (entries: TarEntry list) =
    use memory = new MemoryStream()
    do
        use gzip = new GZipStream(memory, CompressionLevel.Fastest, leaveOpen = true)
        use writer = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen = false)
        for e in entries do
            writer.WriteEntry e
    memory.ToArray()

let private fileEntry (name: string) (bytes: byte[]) =
    let e = PaxTarEntry(TarEntryType.RegularFile, name)
    e.DataStream <- new MemoryStream(bytes)
    e :> TarEntry

let private folderEntry (name: string) = PaxTarEntry(TarEntryType.Directory, name) :> TarEntry

/// Recordings of a small fake release, by path in the release.
let private recordings =
    [ for d in 0 .. 2 do
          for i in 0 .. 1 -> sprintf "recordings/%d_zoe_%d.wav" d i, toneWav 8000 (300 + 100 * d + i) ]

let private hashes =
    recordings |> List.map (fun (p, b) -> p, Convert.ToHexStringLower(SHA256.HashData(b: byte[]))) |> Map.ofList

/// A release archive as GitHub writes it: a pax global header (the commit id), then everything under one folder.
let private release (prefix: string) (files: (string * byte[]) list) =
    (PaxGlobalExtendedAttributesTarEntry(dict [ "comment", "0123456789abcdef" ]) :> TarEntry)
    :: folderEntry prefix :: folderEntry (prefix + "recordings/")
    :: fileEntry (prefix + "README.md") (Encoding.UTF8.GetBytes "fake FSDD")
    :: [ for (p, b) in files -> fileEntry (prefix + p) b ]

let private sourceFor (url: string) (cache: string) = { Url = url; Hashes = hashes; CacheFolder = cache }

/// Runs ensureFsddFrom expecting a DatasetException; returns its message.
let private failure (source: FsddSource) =
    try
        Download.ensureFsddFrom source None |> ignore
        failtest "expected DatasetException"
        ""
    with :? DatasetException as e -> e.Message

let private leftovers (dir: string) =
    if Directory.Exists dir then Directory.GetFileSystemEntries dir |> Array.map (fun p -> Path.GetFileName p |> nonNull) else [||]

/// A Speech Commands tree written by DatasetFixtures.writeSpeechCommands, as a tar.gz whose entries start with
/// `./` like the published archive (no wrapping folder).
let private speechCommandsArchive (temp: TempFolder) =
    let tree = temp.Combine "sc-tree"
    writeSpeechCommands tree [ "yes"; "no" ] 3 1 7 |> ignore
    let entries =
        [ for path in Directory.GetFiles(tree, "*", SearchOption.AllDirectories) |> Array.sort ->
              fileEntry ("./" + Path.GetRelativePath(tree, path).Replace('\\', '/')) (File.ReadAllBytes path) ]
    tree, tarGz (folderEntry "./" :: entries)

let private scSource (url: string) (sha: string) (cache: string) =
    { Download.speechCommandsSource () with Url = url; Sha256 = sha; CacheFolder = cache }

let private archiveFailure (source: ArchiveSource) =
    try
        Download.ensureArchive source |> ignore
        failtest "expected DatasetException"
        ""
    with :? DatasetException as e -> e.Message

[<Tests>]
let tests =
    testList "Download" [
        testList "hash list" [
            testCase "ships the 3,000 recordings of FSDD v1.0.10" <| fun () ->
                let list = Download.fsddHashes.Value
                Expect.equal list.Count 3000 "entries"
                Expect.isTrue (list |> Map.forall (fun p h -> p.StartsWith "recordings/" && h.Length = 64)) "recordings/NAME.wav -> hex"
                Expect.equal list.["recordings/0_george_0.wav"] "228ab63fccdf262d2e05817b6ec918b15e7d9e4bfb6bb20183c46ae088405240" "a known hash"

            testCase "rejects a malformed line, naming it" <| fun () ->
                Expect.throwsT<DatasetException> (fun () -> Download.parseHashList "abc  recordings/x.wav\n" |> ignore) "short hex"

            testCase "agrees with the shared FSDD copy where present" <| fun () ->
                match Hybrid.TestSupport.TestData.fsddFolder () with
                | None -> skiptest "FSDD not present"
                | Some dir ->
                    for name in [ "0_george_0.wav"; "9_yweweler_49.wav"; "5_theo_17.wav" ] do
                        let actual = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, "recordings", name))))
                        Expect.equal actual Download.fsddHashes.Value.["recordings/" + name] name
        ]

        testList "ensureFsddFrom" [
            testCase "returns a given folder holding recordings without any download" <| fun () ->
                use temp = new TempFolder()
                writeFsdd (temp.Combine "mine") [ 1 ] [ "ann" ] [ 0 ]
                let source = sourceFor "http://127.0.0.1:9/never" (temp.Combine "cache")
                Expect.equal (Download.ensureFsddFrom source (Some(temp.Combine "mine"))) (temp.Combine "mine") "given folder"

            testCase "falls back to the cache folder" <| fun () ->
                use temp = new TempFolder()
                writeFsdd (temp.Combine "cache") [ 1 ] [ "ann" ] [ 0 ]
                let source = sourceFor "http://127.0.0.1:9/never" (temp.Combine "cache")
                Expect.equal (Download.ensureFsddFrom source (Some(temp.Combine "absent"))) (temp.Combine "cache") "cache"

            testCase "downloads, verifies and moves a good archive into the cache" <| fun () ->
                use temp = new TempFolder()
                use server = new LoopbackServer(200, tarGz (release "fsdd-1.0.10/" recordings))
                let cache = temp.Combine "cache/hybrid/fsdd-1.0.10"
                let dir = Download.ensureFsddFrom (sourceFor server.Url cache) None
                Expect.equal dir cache "installed in the cache folder"
                for (p, b) in recordings do
                    Expect.equal (File.ReadAllBytes(Path.Combine(dir, p))) b p
                Expect.isTrue (File.Exists(Path.Combine(dir, "README.md"))) "other files kept"
                Expect.equal (leftovers (temp.Combine "cache/hybrid")) [| "fsdd-1.0.10" |] "no temporary leftovers"
                let d = Dataset.openFolder false dir
                Expect.equal d.Items.Length recordings.Length "the installed copy opens as FSDD"

            testCase "rejects an archive with a ../ entry and writes nothing outside" <| fun () ->
                use temp = new TempFolder()
                let evil = fileEntry "fsdd-1.0.10/../../escaped.txt" (Encoding.UTF8.GetBytes "gotcha")
                use server = new LoopbackServer(200, tarGz (release "fsdd-1.0.10/" recordings @ [ evil ]))
                let message = failure (sourceFor server.Url (temp.Combine "cache/hybrid/fsdd-1.0.10"))
                Expect.stringContains message "escaped.txt" "names the entry"
                Expect.stringContains message ".." "says why"
                Expect.isEmpty (Directory.GetFiles(temp.Path, "escaped.txt", SearchOption.AllDirectories)) "nothing escaped"
                Expect.isFalse (File.Exists(Path.Combine(Path.GetTempPath(), "escaped.txt"))) "nothing in the temp folder"
                Expect.isEmpty (leftovers (temp.Combine "cache/hybrid")) "temporary files removed, no cache folder"

            testCase "rejects an archive with a corrupted recording, naming it" <| fun () ->
                use temp = new TempFolder()
                let corrupted =
                    recordings |> List.map (fun (p, b) -> if p = "recordings/2_zoe_1.wav" then p, Array.append b [| 1uy |] else p, b)
                use server = new LoopbackServer(200, tarGz (release "fsdd-1.0.10/" corrupted))
                let message = failure (sourceFor server.Url (temp.Combine "cache/hybrid/fsdd-1.0.10"))
                Expect.stringContains message "recordings/2_zoe_1.wav" "names the file"
                Expect.stringContains message "SHA-256" "says the hash differs"
                Expect.isEmpty (leftovers (temp.Combine "cache/hybrid")) "nothing installed"

            testCase "rejects an archive missing a listed recording" <| fun () ->
                use temp = new TempFolder()
                use server = new LoopbackServer(200, tarGz (release "fsdd-1.0.10/" recordings.Tail))
                let message = failure (sourceFor server.Url (temp.Combine "cache"))
                Expect.stringContains message (fst recordings.Head) "names the missing file"

            testCase "rejects an archive with a recording the list does not name" <| fun () ->
                use temp = new TempFolder()
                use server = new LoopbackServer(200, tarGz (release "fsdd-1.0.10/" (recordings @ [ "recordings/9_eve_0.wav", toneWav 8000 100 ])))
                let message = failure (sourceFor server.Url (temp.Combine "cache"))
                Expect.stringContains message "recordings/9_eve_0.wav" "names the unexpected file"

            testCase "says how to point at a local copy when offline" <| fun () ->
                use temp = new TempFolder()
                let port =
                    let l = new TcpListener(IPAddress.Loopback, 0)
                    l.Start()
                    let p = (l.LocalEndpoint :?> IPEndPoint).Port
                    l.Stop()
                    p
                let message = failure (sourceFor (sprintf "http://127.0.0.1:%d/fsdd.tar.gz" port) (temp.Combine "cache"))
                Expect.stringContains message "--data DIR" "mentions --data"
                Expect.stringContains message Download.FsddVariable "mentions HYBRID_FSDD"
                Expect.isEmpty (leftovers temp.Path) "nothing written"

            testCase "reports an HTTP error status" <| fun () ->
                use temp = new TempFolder()
                use server = new LoopbackServer(404, Encoding.ASCII.GetBytes "no")
                let message = failure (sourceFor server.Url (temp.Combine "cache"))
                Expect.stringContains message "404" "status named"
        ]

        testList "extractTarGz" [
            let rejects (entry: TarEntry) (what: string) =
                use temp = new TempFolder()
                use archive = new MemoryStream(tarGz [ folderEntry "top/"; entry ])
                let target = temp.Combine "target"
                Expect.throwsT<DatasetException> (fun () -> Download.extractTarGz archive target) what
                Expect.equal (leftovers temp.Path) [| "target" |] "nothing beside the target"

            testCase "rejects an absolute path" <| fun () ->
                rejects (fileEntry "/tmp/hybrid-absolute.txt" [| 1uy |]) "absolute"
                Expect.isFalse (File.Exists "/tmp/hybrid-absolute.txt") "not written"

            testCase "rejects a symbolic link" <| fun () ->
                rejects (PaxTarEntry(TarEntryType.SymbolicLink, "top/link.wav", LinkName = "/etc/passwd")) "symlink"

            testCase "rejects a hard link" <| fun () ->
                rejects (PaxTarEntry(TarEntryType.HardLink, "top/hard.wav", LinkName = "../../x")) "hard link"

            testCase "accepts ./ names (tar -C DIR .) and refuses a file named ./" <| fun () ->
                use temp = new TempFolder()
                use archive = new MemoryStream(tarGz [ folderEntry "./"; folderEntry "./a/"; fileEntry "./a/./b.txt" [| 5uy |] ])
                Download.extractTarGz archive (temp.Combine "t")
                Expect.equal (File.ReadAllBytes(temp.Combine "t/a/b.txt")) [| 5uy |] "content"
                rejects (fileEntry "./" [| 1uy |]) "a file replacing the folder"

            testCase "extracts files and folders under the target" <| fun () ->
                use temp = new TempFolder()
                use archive = new MemoryStream(tarGz [ folderEntry "top/"; fileEntry "top/a/b.txt" [| 7uy; 8uy |] ])
                Download.extractTarGz archive (temp.Combine "t")
                Expect.equal (File.ReadAllBytes(temp.Combine "t/top/a/b.txt")) [| 7uy; 8uy |] "content"
        ]

        testList "ensureArchive (Speech Commands v0.02)" [
            testCase "ships the published SHA-256 of the v0.02 archive" <| fun () ->
                let source = Download.speechCommandsSource ()
                Expect.equal source.Sha256 "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58" "v0.02 archive hash"
                Expect.equal source.Marker "validation_list.txt" "marker"
                Expect.stringContains source.CacheFolder "speech-commands-0.02" "user cache folder"

            testCase "downloads, checks the archive hash, extracts and moves it into the cache" <| fun () ->
                use temp = new TempFolder()
                let tree, archive = speechCommandsArchive temp
                use server = new LoopbackServer(200, archive)
                let cache = temp.Combine "cache/hybrid/speech-commands-0.02"
                let dir = Download.ensureArchive (scSource server.Url (Convert.ToHexStringLower(SHA256.HashData archive)) cache)
                Expect.equal dir cache "installed in the cache folder"
                for path in Directory.GetFiles(tree, "*", SearchOption.AllDirectories) do
                    let relative = Path.GetRelativePath(tree, path)
                    Expect.equal (File.ReadAllBytes(Path.Combine(dir, relative))) (File.ReadAllBytes path) relative
                Expect.equal (leftovers (temp.Combine "cache/hybrid")) [| "speech-commands-0.02" |] "no temporary leftovers"
                let d = Dataset.openFolder false dir
                Expect.equal d.Items.Length 6 "the installed copy opens: 2 words x 3 speakers"
                Expect.equal d.NoiseFiles.Length 2 "with its background noise"
                // A second call finds the installed copy without the server (the URL now points nowhere).
                Expect.equal (Download.ensureArchive (scSource "http://127.0.0.1:9/never" "0" cache)) cache "found in the cache"

            testCase "refuses an archive whose SHA-256 differs, naming both, and extracts nothing" <| fun () ->
                use temp = new TempFolder()
                let _, archive = speechCommandsArchive temp
                use server = new LoopbackServer(200, archive)
                let expected = String('0', 64)
                let message = archiveFailure (scSource server.Url expected (temp.Combine "cache/hybrid/speech-commands-0.02"))
                Expect.stringContains message (Convert.ToHexStringLower(SHA256.HashData archive)) "names the actual hash"
                Expect.stringContains message expected "names the shipped hash"
                Expect.stringContains message "nothing was extracted" "says nothing was extracted"
                Expect.isEmpty (leftovers (temp.Combine "cache/hybrid")) "nothing installed, temporaries removed"

            testCase "refuses a verified archive with an entry escaping the folder" <| fun () ->
                use temp = new TempFolder()
                let archive = tarGz [ folderEntry "./"; fileEntry "./validation_list.txt" [||]; fileEntry "./../escaped.txt" [| 1uy |] ]
                use server = new LoopbackServer(200, archive)
                let message = archiveFailure (scSource server.Url (Convert.ToHexStringLower(SHA256.HashData archive)) (temp.Combine "cache/sc"))
                Expect.stringContains message "escaped.txt" "names the entry"
                Expect.isEmpty (Directory.GetFiles(temp.Path, "escaped.txt", SearchOption.AllDirectories)) "nothing escaped"
                Expect.isEmpty (leftovers (temp.Combine "cache")) "nothing installed"

            testCase "refuses an archive without validation_list.txt" <| fun () ->
                use temp = new TempFolder()
                let archive = tarGz [ folderEntry "./"; fileEntry "./yes/a_nohash_0.wav" (toneWav 16000 100) ]
                use server = new LoopbackServer(200, archive)
                let message = archiveFailure (scSource server.Url (Convert.ToHexStringLower(SHA256.HashData archive)) (temp.Combine "cache/sc"))
                Expect.stringContains message "validation_list.txt" "names the missing marker"
                Expect.isEmpty (leftovers (temp.Combine "cache")) "nothing installed"

            testCase "says how to point at a local copy when the server answers an error" <| fun () ->
                use temp = new TempFolder()
                use server = new LoopbackServer(404, Encoding.ASCII.GetBytes "no")
                let message = archiveFailure (scSource server.Url (String('0', 64)) (temp.Combine "cache/sc"))
                Expect.stringContains message "404" "status named"
                Expect.stringContains message "--data DIR" "says how to use a local copy"
        ]

        testList "resolveData" [
            testCase "an existing folder is used as given" <| fun () ->
                use temp = new TempFolder()
                Expect.equal (Download.resolveData (Some temp.Path)) temp.Path "the folder"

            testCase "an unknown name is an error saying where each dataset comes from" <| fun () ->
                let missing = Path.Combine(Path.GetTempPath(), "no-such-dataset-" + Guid.NewGuid().ToString("N"))
                let message =
                    try
                        Download.resolveData (Some missing) |> ignore
                        ""
                    with :? DatasetException as e -> e.Message
                for part in [ missing; "folder not found"; "speech-commands"; "UrbanSound8K"; "GTZAN"; "ESC-50" ] do
                    Expect.stringContains message part part
        ]
    ]
