module Hybrid.FeaturesTests.Main

open Expecto

[<EntryPoint>]
let main argv =
    Hybrid.TestSupport.Runner.run argv (testList "Features" [])
