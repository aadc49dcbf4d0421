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
                for text in [ "noise"; "noise:x"; "gain:-3"; "speed:1.2-0.8"; "speed:9"; "echo:1"; "shift:0.1-0.2"
                              "freq-mask:0"; "freq-mask:2.5"; "time-mask:3-5"; "time-mask:-1" ] do
                    Expect.throwsT<DatasetException> (fun () -> Augment.parse text |> ignore) text

            testCase "reads SpecAugment masks, keeps repeated entries and writes them back" <| fun () ->
                let list = Augment.parse "snr:10-40,freq-mask:5,freq-mask:5,time-mask:6"
                Expect.equal list [ NoiseSnr(10.0, 40.0); FrequencyMask 5; FrequencyMask 5; TimeMask 6 ] "parsed"
                Expect.equal (Augment.parse (Augment.format list)) list "round trip"
                Expect.equal (Augment.waveform list) [ NoiseSnr(10.0, 40.0) ] "waveform part"
        ]

        testList "reverb" [
            testCase "reads reverb:LO-HI, writes it back and refuses times outside (0, 10] s" <| fun () ->
                let list = Augment.parse "reverb:0.1-0.6,reverb:0.3"
                Expect.equal list [ Reverb(0.1, 0.6); Reverb(0.3, 0.3) ] "parsed"
                Expect.equal (Augment.parse (Augment.format list)) list "round trip"
                for text in [ "reverb:0"; "reverb:-1"; "reverb:11"; "reverb:x" ] do
                    Expect.throwsT<DatasetException> (fun () -> Augment.parse text |> ignore) text

            testCase "an impulse gets its direct path, a tail RT60 / 2 long, and a decay of about 60 dB per RT60" <| fun () ->
                let rate, rt60 = 8000, 0.4
                let impulse = Array.init 800 (fun i -> if i = 0 then 1.0f else 0.0f)
                let y = Augment.reverb rate rt60 6.0 impulse
                Expect.equal y.Length (800 + int (rt60 / 2.0 * float rate)) "the clip grows by RT60 / 2"
                Expect.isGreaterThan (abs y.[0]) 0.9f "the direct sound is kept"
                // Energy of the reverberant tail in two windows 0.1 s apart: about 15 dB apart at 60 dB per 0.4 s.
                let energy (a: float) = Array.sub y (int (a * float rate)) (int (0.05 * float rate)) |> Array.sumBy (fun v -> float v * float v)
                let drop = 10.0 * log10 (energy 0.05 / energy 0.15)
                Expect.isTrue (drop > 10.0 && drop < 20.0) (sprintf "a 0.1 s later window is about 15 dB weaker, was %.1f dB" drop)

            testCase "apply draws the reverberation from (seed, key): the same twice, another key another room" <| fun () ->
                let x = Array.init 2000 (fun i -> float32 (sin (float i * 0.3)))
                let a = Augment.apply 1 "k" [||] 8000 [ Reverb(0.1, 0.8) ] x
                Expect.equal (Augment.apply 1 "k" [||] 8000 [ Reverb(0.1, 0.8) ] x) a "deterministic"
                Expect.notEqual (Augment.apply 1 "other" [||] 8000 [ Reverb(0.1, 0.8) ] x) a "another key"
        ]

        testList "vtlp" [
            testCase "reads vtlp:LO-HI as an image augmentation and writes it back" <| fun () ->
                let list = Augment.parse "speed:0.9-1.1,vtlp:0.9-1.1"
                Expect.equal list [ Speed(0.9, 1.1); Vtlp(0.9, 1.1) ] "parsed"
                Expect.equal (Augment.parse (Augment.format list)) list "round trip"
                Expect.equal (Augment.waveform list) [ Speed(0.9, 1.1) ] "not a waveform augmentation"
                Expect.throwsT<DatasetException> (fun () -> Augment.parse "vtlp:0" |> ignore) "a factor of 0"

            testCase "a warp by 1 keeps the image; by 1.25 each band takes the band at its centre / 1.25 (formants move up)" <| fun () ->
                let centres = [| 100.0; 200.0; 300.0; 400.0; 500.0 |]
                Expect.equal (Augment.vtlpSources centres 1.0) [| 0.0; 1.0; 2.0; 3.0; 4.0 |] "identity"
                Expect.equal (Augment.vtlpSources centres 1.25) [| 0.0; 0.6; 1.4; 2.2; 3.0 |] "500 Hz / 1.25 = 400 Hz: band 3"
                Expect.equal (Augment.vtlpSources centres 0.5) [| 1.0; 3.0; 4.0; 4.0; 4.0 |] "sources past the top keep the edge band"
                // One frame per band holding the band's index: the warped image holds the source positions.
                let image = [| 0.0f; 1.0f; 2.0f; 3.0f; 4.0f |]
                let y = Array.copy image
                Augment.imageRow 3 "k" 5 1 centres [ Vtlp(1.25, 1.25) ] y 0
                for b in 0 .. 4 do
                    Expect.floatClose { absolute = 1e-6; relative = 0.0 } (float y.[b]) [| 0.0; 0.6; 1.4; 2.2; 3.0 |].[b] (sprintf "band %d" b)
                Expect.throwsT<ArgumentException> (fun () -> Augment.imageRow 3 "k" 5 1 [| 1.0; 2.0 |] [ Vtlp(1.0, 1.2) ] y 0) "one centre per band"
        ]

        testList "masks" [
            // An image whose every value is non-zero, so masked cells are exactly the zeros.
            let image bands frames = Array.init (bands * frames) (fun i -> float32 (i + 1))
            let zeros (x: float32[]) = x |> Array.indexed |> Array.filter (fun (_, v) -> v = 0.0f) |> Array.map fst |> Set.ofArray

            testPropertyWithConfig Properties.defaults "a frequency mask zeroes whole bands, consecutive and at most F wide; the rest is untouched" <| fun (seed: int) (key: string) (f: byte) (b: byte) ->
                let bands, frames, most = 1 + int b % 50, 7, 1 + int f % 20
                let x = image bands frames
                let y = Array.copy x
                Augment.imageRow seed (string key) bands frames [||] [ FrequencyMask most ] y 0
                let masked = zeros y
                let rows = masked |> Set.map (fun i -> i / frames)
                Expect.equal masked.Count (rows.Count * frames) "whole bands"
                Expect.isLessThanOrEqual rows.Count (min most bands) "width"
                if not rows.IsEmpty then Expect.equal (Set.maxElement rows - Set.minElement rows + 1) rows.Count "consecutive"
                for i in 0 .. x.Length - 1 do
                    if not (masked.Contains i) then Expect.equal y.[i] x.[i] "untouched"

            testPropertyWithConfig Properties.defaults "a time mask zeroes the same consecutive frames of every band, at most T wide" <| fun (seed: int) (t: byte) (w: byte) ->
                let bands, frames, most = 4, 1 + int w % 70, 1 + int t % 30
                let y = image bands frames
                Augment.imageRow seed "k" bands frames [||] [ TimeMask most ] y 0
                let masked = zeros y
                let columns = masked |> Set.map (fun i -> i % frames)
                Expect.equal masked.Count (columns.Count * bands) "every band"
                Expect.isLessThanOrEqual columns.Count (min most frames) "width"
                if not columns.IsEmpty then Expect.equal (Set.maxElement columns - Set.minElement columns + 1) columns.Count "consecutive"

            testCase "masks are a function of (seed, key), differ between keys, and reach every width from 0 to F" <| fun () ->
                let masksOf seed key =
                    let y = image 40 65
                    Augment.imageRow seed key 40 65 [||] [ FrequencyMask 6; TimeMask 8 ] y 0
                    zeros y
                Expect.equal (masksOf 3 "1/17") (masksOf 3 "1/17") "same seed and key"
                let draws = [ for k in 0 .. 199 -> masksOf 3 (sprintf "%d/17" k) ]
                Expect.isGreaterThan (List.distinct draws).Length 150 "fresh draws per key"
                let widths =
                    [ for k in 0 .. 399 ->
                        let y = image 40 65
                        Augment.imageRow 5 (string k) 40 65 [||] [ FrequencyMask 6 ] y 0
                        (zeros y).Count / 65 ] |> Set.ofList
                Expect.equal widths (Set.ofList [ 0 .. 6 ]) "widths 0..F"

            testCase "the image at an offset is masked in place, its neighbours and waveform entries left alone" <| fun () ->
                let y = Array.create 30 7.0f
                Augment.imageRow 1 "k" 2 5 [||] [ Gain 6.0; FrequencyMask 2; TimeMask 5 ] y 10
                for i in Seq.append [ 0 .. 9 ] [ 20 .. 29 ] do Expect.equal y.[i] 7.0f "outside the image"
                Expect.throwsT<ArgumentException> (fun () -> Augment.imageRow 1 "k" 2 5 [||] [ TimeMask 1 ] y 25) "does not fit"

            testCase "the waveform pass leaves masks out" <| fun () ->
                let x = tone 300.0 8000 400
                Expect.equal (Augment.apply 4 "k" [||] 8000 [ FrequencyMask 5; TimeMask 3 ] x) x "identity"
        ]

        testList "building blocks" [
            testCase "gain of +6.02 dB doubles the amplitude" <| fun () ->
                let x = tone 440.0 8000 100
                Assertions.allClose 1e-4 1e-7 (x |> Array.map (fun v -> 2.0f * v)) (Augment.gain (20.0 * log10 2.0) x) "gain"

            testPropertyWithConfig Properties.defaults "shift keeps the length, fills with zeros and moves samples" <| fun (raw: int16 list) (s: int) ->
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
