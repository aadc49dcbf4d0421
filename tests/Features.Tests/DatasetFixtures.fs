/// Temporary folders and hand-made WAV bytes (valid and broken) for the dataset, download and command tests.
module Hybrid.FeaturesTests.DatasetFixtures

open System
open System.IO
open System.Text

/// A temporary folder deleted on Dispose.
type TempFolder() =
    let path = Path.Combine(Path.GetTempPath(), "hybrid-tests-" + Guid.NewGuid().ToString("N"))
    do Directory.CreateDirectory path |> ignore
    member _.Path = path
    member _.Combine(relative: string) = Path.Combine(path, relative)
    interface IDisposable with
        member _.Dispose() =
            try Directory.Delete(path, true) with _ -> ()

let private ascii (s: string) = Encoding.ASCII.GetBytes s

let private le32 (v: int) = BitConverter.GetBytes v
let private le16 (v: int) = BitConverter.GetBytes(int16 v)

/// A canonical RIFF/WAVE file: fmt chunk (format tag, channels, rate, block align, bits) and data chunk.
let wavBytes (formatTag: int) (channels: int) (sampleRate: int) (bits: int) (data: byte[]) =
    let blockAlign = channels * bits / 8
    let fmt =
        Array.concat [ le16 formatTag; le16 channels; le32 sampleRate; le32 (sampleRate * blockAlign); le16 blockAlign; le16 bits ]
    let body =
        Array.concat [ ascii "WAVE"; ascii "fmt "; le32 fmt.Length; fmt; ascii "data"; le32 data.Length; data
                       (if data.Length % 2 = 1 then [| 0uy |] else [||]) ]
    Array.concat [ ascii "RIFF"; le32 body.Length; body ]

/// 32-bit float mono at 8 kHz holding the given samples.
let floatWav32 (samples: float32[]) = wavBytes 3 1 8000 32 (Array.collect (fun (v: float32) -> BitConverter.GetBytes v) samples)

/// 16-bit PCM mono: a 440 Hz tone of `frames` samples at `sampleRate`, amplitude 0.25.
let toneWav (sampleRate: int) (frames: int) =
    let data =
        Array.init frames (fun i -> int16 (8192.0 * sin (2.0 * Math.PI * 440.0 * float i / float sampleRate)))
        |> Array.collect BitConverter.GetBytes
    wavBytes 1 1 sampleRate 16 data

let write (path: string) (bytes: byte[]) =
    Directory.CreateDirectory(Path.GetDirectoryName path |> nonNull) |> ignore
    File.WriteAllBytes(path, bytes)

/// Writes an FSDD-style folder `root/recordings/{digit}_{speaker}_{index}.wav` (8 kHz tones whose length varies
/// with the index) for every digit, speaker and index given, plus speakers.csv.
let writeFsdd (root: string) (digits: int list) (speakers: string list) (indices: int list) =
    for d in digits do
        for s in speakers do
            for i in indices do
                write (Path.Combine(root, "recordings", sprintf "%d_%s_%d.wav" d s i)) (toneWav 8000 (800 + 10 * i))
    File.WriteAllLines(Path.Combine(root, "speakers.csv"), "speaker,gender" :: [ for s in speakers -> s + ",female" ])

/// Broken WAV files of many kinds, by name: each is bad in its own way.
let brokenWavs () : (string * byte[]) list =
    let good = toneWav 8000 400
    let patch (offset: int) (bytes: byte[]) =
        let copy = Array.copy good
        Array.blit bytes 0 copy offset bytes.Length
        copy
    [ "empty", [||]
      "text", ascii "this is not a wav file at all, just some text that is long enough"
      "header-only", good.[.. 11]
      "not-wave", patch 8 (ascii "AVI ")
      "mp3-format-tag", patch 20 (le16 0x55)
      "zero-channels", patch 22 (le16 0)
      "no-data-chunk", Array.concat [ ascii "RIFF"; le32 28; ascii "WAVE"; good.[12..35] ]
      "no-fmt-chunk", Array.concat [ ascii "RIFF"; le32 12; ascii "WAVE"; ascii "data"; le32 0 ]
      "block-align-mismatch", patch 32 (le16 7)
      "nan-float32", floatWav32 [| 0.1f; nanf; 0.2f |]
      "inf-float64", wavBytes 3 1 8000 64 (Array.collect (fun (v: float) -> BitConverter.GetBytes v) [| 0.5; Double.NegativeInfinity |]) ]

/// Recordings cut short (the data chunk declares more bytes than the file holds), by name: each is read with
/// the whole frames present and a warning, and refused by strict reading.
let truncatedWavs () : (string * byte[]) list =
    let good = toneWav 8000 400
    let patch (offset: int) (bytes: byte[]) =
        let copy = Array.copy good
        Array.blit bytes 0 copy offset bytes.Length
        copy
    [ "absurd-data-size", patch 40 (le32 0x7FFFFFF0)
      "truncated-data", good.[.. good.Length - 301] ]
