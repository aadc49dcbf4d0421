// Classifies recordings (WAV, FLAC, MP3, Ogg, AIFF, AU) with a model file written by `hybrid train`:
//   dotnet run -- MODEL.hnn FILE...
// Every file is tried: one that cannot be read gets an error line and the exit code becomes 1.
open System.IO
open Hybrid.Classifier
open Hybrid.Features

/// "FILE: error: MESSAGE", leaving the file out when Hybrid's message already starts with it.
let errorLine (file: string) (message: string) =
    if message.StartsWith file then sprintf "error: %s" message else sprintf "%s: error: %s" file message

[<EntryPoint>]
let main argv =
    if argv.Length < 2 then
        eprintfn "usage: Classify MODEL.hnn RECORDING [RECORDING ...]"
        2
    else
        try
            use classifier = AudioClassifier.Load argv[0]
            let mutable failed = 0
            for file in argv[1..] do
                try
                    let result = classifier.ClassifyFile file
                    printfn "%s: %s (%.3f)" file result.Label result.Confidence
                with
                | :? AudioFormatException | :? IOException | :? System.UnauthorizedAccessException as e ->
                    failed <- failed + 1
                    eprintfn "%s" (errorLine file e.Message)
            if failed > 0 then 1 else 0
        with
        | :? ModelFileException | :? SchemaMismatchException | :? IOException as e ->
            eprintfn "%s" (errorLine argv[0] e.Message)
            1
