/// Running a `hybrid` command in-process and building small FSDD subsets for command tests.
module Hybrid.TestSupport.Commands

open System
open System.IO

/// Runs a command's `run` function (e.g. Hybrid.Cli.TrainCommand.run) on `args`; returns its exit code and what it
/// wrote to standard output and to standard error.
let run (command: TextWriter -> TextWriter -> string[] -> int) (args: string list) : int * string * string =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = command out err (Array.ofList args)
    code, out.ToString(), err.ToString()

/// A fresh FSDD-shaped folder (recordings/) holding copies of `fsdd`'s recordings of every digit for `speakers` at
/// `indexes`, passed to `body` and deleted afterwards.
let withFsddSubset (fsdd: string) (speakers: string list) (indexes: int list) (body: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-subset-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory(Path.Combine(dir, "recordings")) |> ignore
    try
        for digit in 0 .. 9 do
            for speaker in speakers do
                for index in indexes do
                    let name = sprintf "%d_%s_%d.wav" digit speaker index
                    File.Copy(Path.Combine(fsdd, "recordings", name), Path.Combine(dir, "recordings", name))
        body dir
    finally
        Directory.Delete(dir, true)
