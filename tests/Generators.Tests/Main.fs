module Hybrid.GeneratorsTests.Main

open Expecto

[<EntryPoint>]
let main argv =
    Hybrid.TestSupport.Runner.run argv (testList "Generators" [])
