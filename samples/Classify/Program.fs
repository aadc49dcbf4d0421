// Classifies WAV recordings with a model file written by `hybrid train`: dotnet run -- MODEL.hnn FILE.wav...
open Hybrid.Classifier

[<EntryPoint>]
let main argv =
    if argv.Length < 2 then
        eprintfn "usage: Classify MODEL.hnn RECORDING.wav [RECORDING.wav ...]"
        2
    else
        use classifier = AudioClassifier.Load argv[0]
        for file, result in Array.zip argv[1..] (classifier.ClassifyFiles argv[1..]) do
            printfn "%s: %s (%.3f)" file result.Label result.Confidence
        0
