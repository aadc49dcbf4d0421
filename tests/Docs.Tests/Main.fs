/// Entry point: runs every [<Tests>] value in this assembly and prints "N passed, N failed, N skipped".
module Hybrid.DocsTests.Main

[<EntryPoint>]
let main argv = Hybrid.TestSupport.Runner.runInAssembly argv
