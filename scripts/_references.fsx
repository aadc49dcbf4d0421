// Shared by the walk-throughs: references the assemblies `dotnet fsi build.fsx build` puts in src/Cli's output,
// and finds FSDD ($HYBRID_FSDD, else ../shared/data/fsdd beside the repository, else the downloader's cache).
#r "../src/Cli/bin/Release/net10.0/Hybrid.Dsp.Kernels.dll"
#r "../src/Cli/bin/Release/net10.0/Hybrid.Features.Schemas.dll"
#r "../src/Cli/bin/Release/net10.0/Hybrid.Features.dll"
#r "../src/Cli/bin/Release/net10.0/Hybrid.Network.dll"
#r "../src/Cli/bin/Release/net10.0/Hybrid.Classifier.dll"

let fsddFolder () =
    let beside = System.IO.Path.GetFullPath(System.IO.Path.Combine(__SOURCE_DIRECTORY__, "..", "..", "shared", "data", "fsdd"))
    match System.Environment.GetEnvironmentVariable "HYBRID_FSDD" with
    | null | "" when System.IO.Directory.Exists beside -> beside
    | null | "" -> Hybrid.Features.Download.ensureFsdd None
    | path -> path
