module Hybrid.FeaturesTests.AugmentTests

open System
open Expecto
open Hybrid.Features
open Hybrid.TestSupport
open Hybrid.TestSupport.TestData

let private tone (frequency: float) (sampleRate: int) (n: int) =
    Array.init n (fun i -> float32 (0.5 * sin (2.0 * Math.PI * frequency * float i / float sampleRate)))

let private snrDb (clean: float32[]) (mixed: float32[]) =
    let noise = Array.map2 (-) mixed clean
    10.0 * log10 (Augment.power clean / Augment.power noise)

/// Upward zero crossings per second of the middle half (edges hold resampling transients).
let private frequencyOf (sampleRate: int) (x: float32[]) =
    let a, b = x.Length / 4, 3 * x.Length / 4
    let mutable crossings = 0
    for i in a + 1 .. b do
        if x.[i - 1] < 0.0f && x.[i] >= 0.0f then crossings <- crossings + 1
    float crossings * float sampleRate / float (b - a)

[<Tests>]
let tests =
    testList "Augment" [
        testList "parse" [
            testCase "reads the documented example list" <| fun () ->
                Expect.equal
                    (Augment.parse "noise:0.005,shift:0.1,gain:6,speed:0.9-1.1,snr:20,background:5-15")
                    [ Noise 0.005; Shift 0.1; Gain 6.0; Speed(0.9, 1.1); NoiseSnr(20.0, 20.0); Background(5.0, 15.0) ]
                    "parsed"

            testCase "accepts negative SNRs and writes lists back" <| fun () ->
                let list = Augment.parse "snr:-5--1, bg:0"
                Expect.equal list [ NoiseSnr(-5.0, -1.0); Background(0.0, 0.0) ] "parsed"
                Expect.equal (Augment.parse (Augment.format list)) list "round trip"

            testCase "raises DatasetException for bad entries" <| fun () ->
                for text in [ "noise"; "noise:x"; "gain:-3"; "speed:1.2-0.8"; "speed:9"; "echo:1"; "shift:0.1-0.2" ] do
                    Expect.throwsT<DatasetException> (fun () -> Augment.parse text |> ignore) text
        ]

        testList "building blocks" [
            testCase "gain of +6.02 dB doubles the amplitude" <| fun () ->
                let x = tone 440.0 8000 100
                Assertions.allClose 1e-4 1e-7 (x |> Array.map (fun v -> 2.0f * v)) (Augment.gain (20.0 * log10 2.0) x) "gain"

            testProperty "shift keeps the length, fills with zeros and moves samples" <| fun (raw: int16 list) (s: int) ->
                let x = raw |> List.map (fun v -> float32 v) |> Array.ofList
                let n = x.Length
                let s = if n = 0 then 0 else s % (n + 2)
                let y = Augment.shift s x
                y.Length = n
                && Array.forall id (Array.init n (fun i ->
                    let j = i - s
                    y.[i] = (if j >= 0 && j < n then x.[j] else 0.0f)))

            testCase "mixAtSnr reaches the requested SNR" <| fun () ->
                let x = tone 300.0 8000 4000
                let noise = tone 1234.5 8000 4000 |> Array.map (fun v -> v * 3.0f)
                for snr in [ -5.0; 0.0; 10.0; 30.0 ] do
                    Expect.floatClose { absolute = 1e-5; relative = 1e-6 } (snrDb x (Augment.mixAtSnr snr x noise)) snr (sprintf "%g dB" snr)

            testCase "speed 1.25 shortens by 1.25 and raises a tone's frequency by 1.25" <| fun () ->
                let x = tone 500.0 8000 8000
                let y = Augment.speed 1.25 x
                Expect.isLessThanOrEqual (abs (y.Length - 6400)) 2 "length about n / 1.25"
                Expect.floatClose { absolute = 10.0; relative = 0.0 } (frequencyOf 8000 y) 625.0 "frequency"
        ]

        testList "apply" [
            let x = tone 440.0 8000 2000
            let all = [ Speed(0.9, 1.1); Shift 0.01; Gain 6.0; Noise 0.01; NoiseSnr(10.0, 20.0); Background(5.0, 10.0) ]
            let noises = [| tone 50.0 8000 3000; tone 3000.0 8000 500 |]

            testCase "gives the same result for the same seed and key" <| fun () ->
                Expect.equal (Augment.apply 3 "a.wav" noises 8000 all x) (Augment.apply 3 "a.wav" noises 8000 all x) "same"

            testCase "draws independently per key and per seed" <| fun () ->
                let a = Augment.apply 3 "a.wav" noises 8000 all x
                Expect.notEqual (Augment.apply 3 "b.wav" noises 8000 all x) a "another key"
                Expect.notEqual (Augment.apply 4 "a.wav" noises 8000 all x) a "another seed"

            testCase "does not depend on the order or the threads items are processed in" <| fun () ->
                let keys = Array.init 64 (sprintf "clip%02d.wav")
                let sequential = keys |> Array.map (fun k -> k, Augment.apply 1 k noises 8000 all x) |> Map.ofArray
                let parallelReversed = Array.rev keys |> Array.Parallel.map (fun k -> k, Augment.apply 1 k noises 8000 all x) |> Map.ofArray
                Expect.equal parallelReversed sequential "same per item"

            testCase "leaves the input untouched" <| fun () ->
                let copy = Array.copy x
                Augment.apply 1 "k" noises 8000 all x |> ignore
                Expect.equal x copy "input unchanged"

            testCase "adds Gaussian noise of standard deviation C with noise:C" <| fun () ->
                let silence = Array.zeroCreate<float32> 40000
                let y = Augment.apply 5 "k" [||] 8000 [ Noise 0.02 ] silence
                let std = sqrt (Augment.power y)
                Expect.floatClose { absolute = 0.0005; relative = 0.0 } std 0.02 "standard deviation"

            testCase "white noise by SNR lands inside the requested range" <| fun () ->
                for key in [ "a"; "b"; "c"; "d" ] do
                    let snr = snrDb x (Augment.apply 9 key [||] 8000 [ NoiseSnr(10.0, 20.0) ] x)
                    Expect.isTrue (snr >= 9.99 && snr <= 20.01) (sprintf "%s: %g dB" key snr)

            testCase "background noise needs noise recordings" <| fun () ->
                Expect.throwsT<DatasetException> (fun () -> Augment.apply 1 "k" [||] 8000 [ Background(5.0, 5.0) ] x |> ignore) "no noise"

            testCase "loads background-noise recordings at the requested rate" <| fun () ->
                use temp = new DatasetFixtures.TempFolder()
                DatasetFixtures.write (temp.Combine "noise.wav") (DatasetFixtures.toneWav 16000 3200)
                let loaded = Augment.loadNoise 8000 [| temp.Combine "noise.wav" |]
                Expect.equal (loaded |> Array.map Array.length) [| 1600 |] "one clip, halved"

            testCase "background noise is mixed at the requested SNR" <| fun () ->
                let snr = snrDb x (Augment.apply 2 "k" noises 8000 [ Background(12.0, 12.0) ] x)
                Expect.floatClose Accuracy.medium snr 12.0 "SNR"
        ]
    ]
