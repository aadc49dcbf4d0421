module Hybrid.DspKernelsTests.Main

open Expecto

[<EntryPoint>]
let main argv =
    Hybrid.TestSupport.Runner.run argv (testList "Dsp.Kernels" [])
