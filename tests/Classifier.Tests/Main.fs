module Hybrid.ClassifierTests.Main

open Expecto

[<EntryPoint>]
let main argv =
    Hybrid.TestSupport.Runner.run argv (testList "Classifier" [])
