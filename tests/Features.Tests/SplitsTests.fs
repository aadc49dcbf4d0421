module Hybrid.FeaturesTests.SplitsTests

open System
open Expecto
open Hybrid.Features
open Hybrid.TestSupport
open Hybrid.TestSupport.TestData

/// Items built from generated (label, speaker, fold) bytes: labels a-e, speakers s0-s5, folds 1-4, indices 0-49.
let private itemsOf (raw: (byte * byte * byte) list) =
    raw
    |> List.mapi (fun n (l, s, f) ->
        let label = string (char (int 'a' + int l % 5))
        { Path = sprintf "/data/%05d.wav" n; Key = sprintf "%05d" n; Label = label; LabelIndex = int l % 5
          Speaker = Some(sprintf "s%d" (int s % 6)); Fold = Some(1 + int f % 4); Index = Some(n % 50); Subset = None
          SampleRate = 8000; Channels = 1; Frames = 8000L })
    |> Array.ofList

let private keys (items: Item[]) = items |> Array.map (fun i -> i.Key) |> Set.ofArray

/// Parts are disjoint and, together, every item.
let private disjointAndCovering (all: Item[]) (fold: SplitFold) =
    let train, validation, test = keys fold.Train, keys fold.Validation, keys fold.Test
    Set.isEmpty (Set.intersect train test) && Set.isEmpty (Set.intersect train validation)
    && Set.isEmpty (Set.intersect validation test)
    && Set.unionMany [ train; validation; test ] = keys all
    && fold.Train.Length + fold.Validation.Length + fold.Test.Length = all.Length

let private countLabel label (items: Item[]) = items |> Array.filter (fun i -> i.Label = label) |> Array.length

let private ratioOf (b: byte) = 0.05 + 0.9 * float b / 255.0

let private config = Properties.config 200

[<Tests>]
let tests =
    testList "Split" [
        testList "parse" [
            testCase "reads every CLI spelling and format writes it back" <| fun () ->
                let cases =
                    [ "official", Official; "speaker:george", HoldOutSpeakers [ "george" ]
                      "speaker:george,theo", HoldOutSpeakers [ "george"; "theo" ]; "loso", LeaveOneSpeakerOut
                      "fold:3", PredefinedFold [ 3 ]; "fold:9,10", PredefinedFold [ 9; 10 ]; "folds", PredefinedFolds; "random:0.2", StratifiedRandom 0.2
                      "kfold:5", StratifiedKFold 5 ]
                for (text, spec) in cases do
                    Expect.equal (Split.parse text) spec text
                    Expect.equal (Split.format spec) text (sprintf "format %A" spec)

            testCase "raises DatasetException naming bad text and what was expected" <| fun () ->
                for text in [ ""; "bogus"; "speaker:"; "fold:x"; "random:1.5"; "random:0"; "random:abc"; "kfold:1"; "loso:2" ] do
                    try
                        Split.parse text |> ignore
                        failtestf "'%s' was accepted" text
                    with :? DatasetException as e ->
                        Expect.stringContains e.Message (sprintf "'%s'" text) (sprintf "message for '%s' names it" text)
        ]

        testList "stratifiedRandom" [
            yield!
                Properties.testProperty config "parts are disjoint and cover every item" [
                    Properties.regression 75UL 0x9E3779B97F4A7C15UL (Some 20) "no item at all"
                ] <| fun (seed: int) (r: byte) (raw: (byte * byte * byte) list) ->
                    let items = itemsOf raw
                    disjointAndCovering items (Split.stratifiedRandom seed (ratioOf r) items)

            yield!
                Properties.testProperty config "keeps each label's proportion within one item" [
                    Properties.regression 41UL 0x9E3779B97F4A7C15UL (Some 20) "one item, test ratio 0.76"
                ] <| fun (seed: int) (r: byte) (raw: (byte * byte * byte) list) ->
                    let items = itemsOf raw
                    let ratio = ratioOf r
                    let fold = Split.stratifiedRandom seed ratio items
                    items
                    |> Array.map (fun i -> i.Label)
                    |> Array.distinct
                    |> Array.forall (fun label -> abs (float (countLabel label fold.Test) - ratio * float (countLabel label items)) <= 1.0)

            testPropertyWithConfig config "gives the same split for the same seed whatever the items' order" <| fun (seed: int) (raw: (byte * byte * byte) list) ->
                let items = itemsOf raw
                let a = Split.stratifiedRandom seed 0.3 items
                let b = Split.stratifiedRandom seed 0.3 (Array.rev items)
                keys a.Test = keys b.Test && a.Test = b.Test

            testCase "gives different splits for different seeds" <| fun () ->
                let items = itemsOf [ for n in 0 .. 199 -> byte n, byte (n / 7), 0uy ]
                let tests = [ for seed in 0 .. 4 -> keys (Split.stratifiedRandom seed 0.25 items).Test ]
                Expect.equal (List.distinct tests).Length 5 "five seeds, five splits"
        ]

        testList "stratifiedKFold" [
            yield!
                Properties.testProperty config "test parts are disjoint, cover every item, and each fold covers it all" [
                    Properties.regression 8UL 0x9E3779B97F4A7C15UL (Some 20) "k = 2 with exactly 2 items"
                    Properties.regression 99UL 0x9E3779B97F4A7C15UL (Some 20) "k = 7 with exactly 7 items: one per fold"
                ] <| fun (seed: int) (kb: byte) (raw: (byte * byte * byte) list) ->
                    let items = itemsOf raw
                    let k = 2 + int kb % 6
                    items.Length < k
                    || (let folds = Split.stratifiedKFold seed k items
                        let tests = folds |> Array.map (fun f -> keys f.Test)
                        folds.Length = k
                        && Array.forall (disjointAndCovering items) folds
                        && Set.unionMany tests = keys items
                        && Array.sumBy Set.count tests = items.Length)

            testPropertyWithConfig config "keeps each label's share of every fold within one item" <| fun (seed: int) (kb: byte) (raw: (byte * byte * byte) list) ->
                let items = itemsOf raw
                let k = 2 + int kb % 6
                items.Length < k
                || Split.stratifiedKFold seed k items
                   |> Array.forall (fun f ->
                       items
                       |> Array.map (fun i -> i.Label)
                       |> Array.distinct
                       |> Array.forall (fun label -> abs (float (countLabel label f.Test) - float (countLabel label items) / float k) < 1.0))

            testCase "refuses more folds than items" <| fun () ->
                Expect.throwsT<DatasetException> (fun () -> Split.stratifiedKFold 0 5 (itemsOf [ 0uy, 0uy, 0uy ]) |> ignore) "k > n"
        ]

        testList "speakers" [
            testPropertyWithConfig config "a hold-out puts no speaker in both parts" <| fun (pick: byte) (raw: (byte * byte * byte) list) ->
                let items = itemsOf raw
                let speakers = Dataset.speakers items
                speakers.Length = 0
                || (let held = [ speakers.[int pick % speakers.Length] ]
                    let fold = Split.holdOutSpeakers held items
                    let speakersOf (part: Item[]) = part |> Array.choose (fun i -> i.Speaker) |> Set.ofArray
                    disjointAndCovering items fold
                    && Set.isEmpty (Set.intersect (speakersOf fold.Train) (speakersOf fold.Test))
                    && speakersOf fold.Test = set held)

            testPropertyWithConfig config "leave-one-speaker-out holds out each speaker once" <| fun (raw: (byte * byte * byte) list) ->
                let items = itemsOf raw
                items.Length = 0
                || (let folds = Split.leaveOneSpeakerOut items
                    folds |> Array.map (fun f -> f.Name) = Dataset.speakers items
                    && folds |> Array.forall (fun f -> f.Test |> Array.forall (fun i -> i.Speaker = Some f.Name) && disjointAndCovering items f)
                    && Array.sumBy (fun f -> f.Test.Length) folds = items.Length)

            testCase "raises DatasetException for an unknown speaker, listing the known ones" <| fun () ->
                let items = itemsOf [ 0uy, 0uy, 0uy; 1uy, 1uy, 0uy ]
                try
                    Split.apply 0 (Split.parse "speaker:s0,zed") items |> ignore
                    failtest "expected DatasetException"
                with :? DatasetException as e ->
                    Expect.stringContains e.Message "zed" "names the unknown speaker"
                    Expect.stringContains e.Message "s0, s1" "lists the known speakers"
        ]

        testList "predefined" [
            testPropertyWithConfig config "fold K is exactly the items of fold K" <| fun (kb: byte) (raw: (byte * byte * byte) list) ->
                let items = itemsOf raw
                let k = 1 + int kb % 4
                items |> Array.exists (fun i -> i.Fold = Some k) |> not
                || (let fold = Split.predefinedFold [ k ] items
                    disjointAndCovering items fold && fold.Test |> Array.forall (fun i -> i.Fold = Some k) && fold.Name = sprintf "fold%d" k)

            testCase "official holds out FSDD indices 0-4" <| fun () ->
                let items = itemsOf [ for n in 0 .. 99 -> byte n, byte n, 0uy ]
                let fold = Split.official items
                Expect.equal fold.Test.Length 10 "indices 0-4 of two runs of 50"
                Expect.isTrue (fold.Test |> Array.forall (fun i -> i.Index.Value < 5)) "test indices"
                Expect.isTrue (disjointAndCovering items fold) "disjoint and covering"

            testCase "official follows Speech Commands' list files when items carry subsets" <| fun () ->
                let subsets = [| "train"; "validation"; "test"; "train"; "train"; "test" |]
                let items = itemsOf [ for n in 0 .. 5 -> byte n, byte n, 0uy ] |> Array.mapi (fun n i -> { i with Subset = Some subsets.[n] })
                let fold = Split.official items
                Expect.equal (fold.Train.Length, fold.Validation.Length, fold.Test.Length) (3, 1, 2) "parts"
                Expect.isTrue (disjointAndCovering items fold) "disjoint and covering"

            testCase "official needs FSDD indices or Speech Commands lists" <| fun () ->
                let items = itemsOf [ 0uy, 0uy, 0uy ] |> Array.map (fun i -> { i with Index = None })
                Expect.throwsT<DatasetException> (fun () -> Split.official items |> ignore) "no indices"

            testCase "unknown fold raises DatasetException listing the folds" <| fun () ->
                let items = itemsOf [ 0uy, 0uy, 0uy ]
                Expect.throwsT<DatasetException> (fun () -> Split.predefinedFold [ 9 ] items |> ignore) "fold 9"

            testPropertyWithConfig config "several held-out folds are exactly their items" <| fun (raw: (byte * byte * byte) list) ->
                let items = itemsOf raw
                let held = [ 2; 3 ] |> List.filter (fun k -> items |> Array.exists (fun i -> i.Fold = Some k))
                held.IsEmpty
                || (let fold = Split.predefinedFold held items
                    disjointAndCovering items fold
                    && fold.Test |> Array.forall (fun i -> i.Fold |> Option.exists (fun f -> List.contains f held))
                    && fold.Train |> Array.forall (fun i -> i.Fold |> Option.forall (fun f -> not (List.contains f held))))
        ]

        testList "withValidation" [
            testPropertyWithConfig config "validation comes out of the training part only, and the test part is untouched" <| fun (seed: int) (r: byte) (raw: (byte * byte * byte) list) ->
                let items = itemsOf raw
                let ratio = 0.05 + 0.5 * float r / 255.0
                items.Length < 2
                || (let fold = Split.stratifiedRandom seed 0.2 items
                    let v = Split.withValidation seed ratio fold
                    disjointAndCovering items v
                    && keys v.Test = keys fold.Test
                    && Set.union (keys v.Train) (keys v.Validation) = keys fold.Train)

            testCase "keeps a validation part the dataset defines (Speech Commands' list)" <| fun () ->
                let subsets = [| "train"; "validation"; "test"; "train" |]
                let items = itemsOf [ for n in 0 .. 3 -> byte n, byte n, 0uy ] |> Array.mapi (fun n i -> { i with Subset = Some subsets.[n] })
                let fold = Split.official items
                Expect.equal (Split.withValidation 0 0.5 fold) fold "unchanged"

            testCase "with many speakers, whole speakers move to validation" <| fun () ->
                let items =
                    [| for s in 0 .. 39 do
                         for label in [ "a"; "b" ] do
                             for n in 0 .. 2 ->
                                 { Path = ""; Key = sprintf "%s/s%02d_%d" label s n; Label = label; LabelIndex = (if label = "a" then 0 else 1)
                                   Speaker = Some(sprintf "s%02d" s); Fold = None; Index = Some n; Subset = None
                                   SampleRate = 8000; Channels = 1; Frames = 8000L } |]
                let fold = Split.withValidation 3 0.1 { Name = "train/test"; Train = items; Validation = [||]; Test = [||] }
                let speakers (part: Item[]) = part |> Array.choose (fun i -> i.Speaker) |> Set.ofArray
                Expect.isEmpty (Set.intersect (speakers fold.Train) (speakers fold.Validation)) "no speaker in both parts"
                Expect.equal fold.Validation.Length 24 "4 of 40 speakers, 6 clips each"

            testCase "with few speakers (FSDD), items are stratified by label and speaker" <| fun () ->
                let items = itemsOf [ for n in 0 .. 199 -> byte n, byte (n % 3), 0uy ]
                let fold = Split.withValidation 0 0.1 { Name = "train/test"; Train = items; Validation = [||]; Test = [||] }
                Expect.isTrue (fold.Validation.Length >= 15 && fold.Validation.Length <= 25) (sprintf "about 10%% of 200, was %d" fold.Validation.Length)
                Expect.isTrue (disjointAndCovering items fold) "disjoint and covering"

            testCase "a ratio outside (0, 1) is refused" <| fun () ->
                Expect.throwsT<ArgumentException> (fun () -> Split.withValidation 0 1.0 { Name = "x"; Train = [||]; Validation = [||]; Test = [||] } |> ignore) "ratio 1"
        ]

        testList "FSDD" [
            testWithFsdd "splits the shared FSDD officially into 2,250 / 250 and into 5 speaker folds of 500" <| fun dir ->
                let d = Dataset.openFolder false dir
                let official = Split.official d.Items
                Expect.equal (official.Train.Length, official.Test.Length) (2250, 250) "official"
                let loso = Split.leaveOneSpeakerOut d.Items
                Expect.equal (loso |> Array.map (fun f -> f.Test.Length)) (Array.create 5 500) "loso"
                let held = Split.holdOutSpeakers [ "george"; "theo" ] d.Items
                Expect.equal (held.Train.Length, held.Test.Length) (1500, 1000) "two speakers held out"
                let random = Split.stratifiedRandom 7 0.2 d.Items
                Expect.equal random.Test.Length 500 "20% of each digit's 250"
                let kfold = Split.stratifiedKFold 7 5 d.Items
                Expect.equal (kfold |> Array.map (fun f -> f.Test.Length)) (Array.create 5 500) "5-fold"
        ]
    ]
