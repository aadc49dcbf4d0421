module Hybrid.FeaturesTests.DatasetTests

open System
open System.IO
open System.Threading
open Expecto
open Hybrid.Features
open Hybrid.TestSupport
open Hybrid.TestSupport.TestData
open Hybrid.FeaturesTests.DatasetFixtures

let private names (paths: string seq) = paths |> Seq.map (fun p -> Path.GetFileName p |> nonNull) |> Set.ofSeq

[<Tests>]
let tests =
    testList "Dataset" [
        testList "tryParseFsddName" [
            testCase "reads digit, speaker and index from an FSDD name" <| fun () ->
                Expect.equal (Dataset.tryParseFsddName "7_jackson_42.wav") (Some(7, "jackson", 42)) "7_jackson_42.wav"
                Expect.equal (Dataset.tryParseFsddName "0_theo_0.WAV") (Some(0, "theo", 0)) "upper-case extension"

            testCase "rejects names that do not follow {digit}_{speaker}_{index}.wav" <| fun () ->
                for name in [ "12_theo_1.wav"; "a_theo_1.wav"; "1_theo.wav"; "1_theo_x.wav"; "1_theo_1.flac" ] do
                    Expect.isNone (Dataset.tryParseFsddName name) name
        ]

        testList "Csv" [
            testCase "parses quoted fields with commas, doubled quotes and CRLF line ends" <| fun () ->
                let rows = Csv.parse "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",3\r\n\r\nlast,,\n"
                Expect.equal rows [| [| "a"; "b"; "c" |]; [| "x, y"; "say \"hi\""; "3" |]; [| "last"; ""; "" |] |] "rows"
        ]

        testList "real layouts" [
            testCase "ESC-50: meta/esc50.csv is found, its files under audio/, categories and folds read" <| fun () ->
                use temp = new TempFolder()
                writeEsc50 temp.Path [ "dog"; "rain" ] 2 2 0.3 0 |> ignore
                let d = Dataset.openFolder false temp.Path
                Expect.equal d.Labels [| "dog"; "rain" |] "categories"
                Expect.equal d.Items.Length 8 "2 folds x 2 categories x 2"
                Expect.isEmpty d.Skipped "nothing skipped"
                Expect.equal (d.Items |> Array.choose (fun i -> i.Fold) |> Array.distinct |> Array.sort) [| 1; 2 |] "folds"

            testCase "GTZAN: the class folders under genres/ are the labels" <| fun () ->
                use temp = new TempFolder()
                writeGtzan temp.Path [ "jazz"; "rock" ] 2 0.2 0 |> ignore
                let d = Dataset.openFolder false temp.Path
                Expect.equal d.Labels [| "jazz"; "rock" |] "genres"
                Expect.equal (d.Items |> Array.map (fun i -> i.Key)) [| "jazz/jazz.00000.wav"; "jazz/jazz.00001.wav"; "rock/rock.00000.wav"; "rock/rock.00001.wav" |] "keys"
                Expect.equal d.Items.[1].Index (Some 1) "track number"

            testCase "UrbanSound8K: 8-bit, 16-bit, 24-bit, float, stereo and 11-96 kHz files all open with their header values" <| fun () ->
                use temp = new TempFolder()
                writeUrbanSound8K temp.Path [ "siren"; "dog_bark" ] 2 6 0 |> ignore
                let d = Dataset.openFolder false temp.Path
                Expect.isEmpty d.Skipped "nothing skipped"
                Expect.equal d.Items.Length 24 "every row"
                Expect.equal (d.Items |> Array.map (fun i -> i.SampleRate) |> Array.distinct |> Array.sort) [| 11025; 22050; 44100; 48000; 96000 |] "rates"
                Expect.equal (d.Items |> Array.map (fun i -> i.Channels) |> Array.distinct |> Array.sort) [| 1; 2 |] "channels"
        ]

        testList "selectLabels" [
            testCase "keeps the chosen words in order and folds the rest into the other label" <| fun () ->
                use temp = new TempFolder()
                writeSpeechCommands temp.Path [ "go"; "no"; "stop"; "yes" ] 2 1 0 |> ignore
                let d = Dataset.openFolder false temp.Path
                let twelve = Dataset.selectLabels [ "yes"; "no" ] (Some "unknown") d
                Expect.equal twelve.Labels [| "yes"; "no"; "unknown" |] "labels"
                Expect.equal twelve.Items.Length d.Items.Length "every item kept"
                Expect.isTrue (twelve.Items |> Array.forall (fun i -> twelve.Labels.[i.LabelIndex] = i.Label)) "indices follow the labels"
                Expect.equal (twelve.Items |> Array.filter (fun i -> i.Label = "unknown") |> Array.length) 4 "go and stop are unknown"
                let two = Dataset.selectLabels [ "stop"; "go" ] None d
                Expect.equal (two.Items |> Array.map (fun i -> i.Label) |> Array.distinct |> Array.sort) [| "go"; "stop" |] "the others dropped"

            testCase "a label the dataset lacks is an error listing its labels" <| fun () ->
                use temp = new TempFolder()
                writeSpeechCommands temp.Path [ "go"; "no" ] 1 1 0 |> ignore
                let d = Dataset.openFolder false temp.Path
                let e = Expect.throwsC (fun () -> Dataset.selectLabels [ "maybe" ] None d |> ignore) id
                Expect.stringContains e.Message "go, no" "lists the labels"
                Expect.throwsT<DatasetException> (fun () -> Dataset.selectLabels [ "go" ] (Some "go") d |> ignore) "other label among the kept"
                let one = Expect.throwsC (fun () -> Dataset.selectLabels [ "go" ] None d |> ignore) id
                Expect.stringContains one.Message "at least two" "one class left is refused"
                Expect.equal (Dataset.selectLabels [ "go" ] (Some "other") d).Labels [| "go"; "other" |] "one label and the rest folded is two classes"
        ]

        testList "openFsdd" [
            testCase "gives every recording its digit label, speaker, index and key" <| fun () ->
                use temp = new TempFolder()
                writeFsdd temp.Path [ 0; 3; 9 ] [ "ann"; "bob" ] [ 0; 1; 7 ]
                let d = Dataset.openFolder false temp.Path
                Expect.equal d.Source Fsdd "detected as FSDD"
                Expect.equal d.Labels [| "0"; "1"; "2"; "3"; "4"; "5"; "6"; "7"; "8"; "9" |] "labels are the ten digits"
                Expect.equal d.Items.Length 18 "3 digits x 2 speakers x 3 indices"
                Expect.isEmpty d.Skipped "nothing skipped"
                let item = d.Items |> Array.find (fun i -> i.Key = "recordings/9_bob_7.wav")
                Expect.equal (item.Label, item.LabelIndex, item.Speaker, item.Index) ("9", 9, Some "bob", Some 7) "9_bob_7"
                Expect.equal (item.SampleRate, item.Channels, item.Frames) (8000, 1, 870L) "header values"
                Expect.equal (d.SpeakerInfo.["ann"].["gender"]) "female" "speakers.csv read"

            testCase "reads recordings lying directly in the folder and skips wrongly named ones with a reason" <| fun () ->
                use temp = new TempFolder()
                write (temp.Combine "1_ann_0.wav") (toneWav 8000 500)
                write (temp.Combine "2_ann_3.wav") (toneWav 8000 500)
                write (temp.Combine "hello.wav") (toneWav 8000 500)
                let d = Dataset.openFolder false temp.Path
                Expect.equal d.Source Fsdd "detected as FSDD"
                Expect.equal (d.Items |> Array.map (fun i -> i.Key)) [| "1_ann_0.wav"; "2_ann_3.wav" |] "items"
                Expect.equal (d.Skipped |> Array.map (fun s -> Path.GetFileName s.Path)) [| "hello.wav" |] "skipped"
                Expect.stringContains d.Skipped.[0].Reason "{digit}_{speaker}_{index}" "reason names the expected pattern"

            testCase "lists every broken WAV of many kinds with its own reason, without a crash" <| fun () ->
                use temp = new TempFolder()
                writeFsdd temp.Path [ 1; 2 ] [ "ann" ] [ 0; 1 ]
                let broken = brokenWavs ()
                broken |> List.iteri (fun i (_, bytes) -> write (temp.Combine(sprintf "recordings/5_broken_%d.wav" i)) bytes)
                let d = Dataset.openFolder false temp.Path
                Expect.equal d.Items.Length 4 "the good recordings are kept"
                let skipped = d.Skipped |> Array.map (fun s -> Path.GetFileName s.Path |> nonNull, s.Reason) |> Map.ofArray
                broken |> List.iteri (fun i (kind, _) ->
                    match skipped.TryFind(sprintf "5_broken_%d.wav" i) with
                    | Some reason -> Expect.isNotEmpty reason (sprintf "%s has a reason" kind)
                    | None -> failtestf "the %s file (5_broken_%d.wav) was neither skipped nor reported" kind i)
                Expect.equal d.Skipped.Length broken.Length "one entry per broken file"
                for kind in [ "nan-float32"; "inf-float64" ] do
                    let i = broken |> List.findIndex (fun (k, _) -> k = kind)
                    Expect.stringStarts skipped.[sprintf "5_broken_%d.wav" i] "non-finite samples" (sprintf "%s is skipped for its non-finite samples" kind)

            testCase "uses a truncated recording's whole frames and lists it in Warnings; strict refuses it" <| fun () ->
                use temp = new TempFolder()
                writeFsdd temp.Path [ 1 ] [ "ann" ] [ 0 ]
                let cut = truncatedWavs ()
                cut |> List.iteri (fun i (_, bytes) -> write (temp.Combine(sprintf "recordings/6_cut_%d.wav" i)) bytes)
                let d = Dataset.openFolder false temp.Path
                Expect.isEmpty d.Skipped "nothing skipped"
                Expect.equal d.Items.Length (1 + cut.Length) "the truncated recordings are used"
                Expect.equal (d.Warnings |> Array.map (fun w -> Path.GetFileName w.Path |> nonNull)) [| for i in 0 .. cut.Length - 1 -> sprintf "6_cut_%d.wav" i |] "one warning per truncated file"
                for w in d.Warnings do
                    Expect.stringContains w.Reason "truncated file" "the warning says why"
                let truncated = d.Items |> Array.find (fun i -> i.Path.EndsWith "6_cut_1.wav")
                Expect.equal truncated.Frames ((400L * 2L - 301L + 1L) / 2L) "the whole frames present"
                Expect.equal (AudioFile.read { AudioFile.defaults with SampleRate = Some truncated.SampleRate } truncated.Path).Samples.[0].Length (int truncated.Frames) "reading for training gives those frames"
                try
                    Dataset.openFolder true temp.Path |> ignore
                    failtest "expected DatasetException in strict mode"
                with :? DatasetException as e ->
                    Expect.stringContains e.Message "6_cut_0.wav" "names the first truncated file"
                    Expect.stringContains e.Message "truncated file" "says why"

            testCase "reading a float recording with a NaN for training raises AudioFormatException naming the file" <| fun () ->
                use temp = new TempFolder()
                writeFsdd temp.Path [ 1 ] [ "ann" ] [ 0 ]
                let d = Dataset.openFolder false temp.Path
                let path = temp.Combine "recordings/1_ann_0.wav"
                write path (floatWav32 [| 0.0f; 0.5f; infinityf |])
                try
                    AudioFile.read { AudioFile.defaults with SampleRate = Some 8000 } d.Items.[0].Path |> ignore
                    failtest "expected AudioFormatException"
                with :? AudioFormatException as e ->
                    Expect.equal e.Path path "names the file"
                    Expect.stringContains e.Message "non-finite samples: +inf at frame 2, channel 0" "says what and where"

            testCase "fails in strict mode on the first unusable file, naming it" <| fun () ->
                use temp = new TempFolder()
                writeFsdd temp.Path [ 1 ] [ "ann" ] [ 0 ]
                write (temp.Combine "recordings/2_ann_0.wav") [||]
                write (temp.Combine "recordings/3_ann_0.wav") [||]
                Expect.throwsT<DatasetException> (fun () -> Dataset.openFolder true temp.Path |> ignore) "strict"

            testCase "names the file in the strict-mode exception" <| fun () ->
                use temp = new TempFolder()
                writeFsdd temp.Path [ 1 ] [ "ann" ] [ 0 ]
                write (temp.Combine "recordings/2_ann_0.wav") (Text.Encoding.ASCII.GetBytes "not audio")
                try
                    Dataset.openFolder true temp.Path |> ignore
                    failtest "expected DatasetException"
                with :? DatasetException as e -> Expect.stringContains e.Message "2_ann_0.wav" "message names the file"

            testCase "raises DatasetException for a missing folder" <| fun () ->
                Expect.throwsT<DatasetException> (fun () -> Dataset.openFolder false "/no/such/hybrid/folder" |> ignore) "missing"
        ]

        testList "openFolderPerClass" [
            testCase "takes sub-folders as classes, honours Speech Commands' lists and offers background noise" <| fun () ->
                use temp = new TempFolder()
                for word in [ "yes"; "no" ] do
                    for speaker in [ "0a1b2c3d"; "ffee0011" ] do
                        for n in 0 .. 1 do
                            write (temp.Combine(sprintf "%s/%s_nohash_%d.wav" word speaker n)) (toneWav 16000 1600)
                write (temp.Combine "_background_noise_/white_noise.wav") (toneWav 16000 16000)
                File.WriteAllLines(temp.Combine "validation_list.txt", [ "yes/0a1b2c3d_nohash_0.wav" ])
                File.WriteAllLines(temp.Combine "testing_list.txt", [ "no/ffee0011_nohash_1.wav"; "yes/ffee0011_nohash_1.wav" ])
                let d = Dataset.openFolder false temp.Path
                Expect.equal d.Source FolderPerClass "folder per class"
                Expect.equal d.Labels [| "no"; "yes" |] "classes sorted, background noise left out"
                Expect.equal d.Items.Length 8 "8 recordings"
                Expect.equal (names d.NoiseFiles) (set [ "white_noise.wav" ]) "noise files"
                let subset key = (d.Items |> Array.find (fun i -> i.Key = key)).Subset
                Expect.equal (subset "yes/0a1b2c3d_nohash_0.wav") (Some "validation") "validation list"
                Expect.equal (subset "no/ffee0011_nohash_1.wav") (Some "test") "testing list"
                Expect.equal (subset "no/0a1b2c3d_nohash_1.wav") (Some "train") "neither list"
                let item = d.Items |> Array.find (fun i -> i.Key = "yes/ffee0011_nohash_1.wav")
                Expect.equal (item.LabelIndex, item.Speaker, item.Index) (1, Some "ffee0011", Some 1) "speaker and index from the name"

            testCase "lists the broken files of class folders and survives odd names" <| fun () ->
                use temp = new TempFolder()
                write (temp.Combine "yes/abc_nohash_99999999999.wav") (toneWav 16000 800)
                write (temp.Combine "no/x.00000000000000000001.wav") (toneWav 16000 800)
                for (kind, bytes) in brokenWavs () do
                    write (temp.Combine(sprintf "no/%s.wav" kind)) bytes
                let d = Dataset.openFolder false temp.Path
                Expect.equal d.Items.Length 2 "the two good files"
                Expect.equal (d.Items |> Array.map (fun i -> i.Index)) [| Some 1; None |] "indices that fit an int are read"
                Expect.equal (names (d.Skipped |> Array.map (fun s -> s.Path))) (set [ for (k, _) in brokenWavs () -> k + ".wav" ]) "every broken file"

            testCase "reads GTZAN-style names without speakers" <| fun () ->
                use temp = new TempFolder()
                for genre in [ "rock"; "blues"; "jazz" ] do
                    write (temp.Combine(sprintf "%s/%s.00042.wav" genre genre)) (toneWav 22050 2205)
                let d = Dataset.openFolder false temp.Path
                Expect.equal d.Labels [| "blues"; "jazz"; "rock" |] "genres"
                Expect.isTrue (d.Items |> Array.forall (fun i -> i.Speaker.IsNone && i.Index = Some 42)) "index, no speaker"
        ]

        testList "openManifest" [
            testCase "reads UrbanSound8K's metadata layout with folds and reports missing files" <| fun () ->
                use temp = new TempFolder()
                let rows =
                    [ "100032-3-0-0.wav", 1, 3, "dog_bark"; "100263-2-0-117.wav", 2, 2, "children_playing"
                      "101415-3-0-2.wav", 2, 3, "dog_bark"; "102305-6-0-0.wav", 1, 6, "gun_shot" ]
                for (name, fold, _, _) in rows do
                    write (temp.Combine(sprintf "audio/fold%d/%s" fold name)) (toneWav 44100 4410)
                let csv =
                    "slice_file_name,fsID,start,end,salience,fold,classID,class"
                    :: [ for (name, fold, id, cls) in rows -> sprintf "%s,1,0,1,1,%d,%d,%s" name fold id cls ]
                    @ [ "missing.wav,1,0,1,1,3,0,air_conditioner" ]
                write (temp.Combine "metadata/UrbanSound8K.csv") (Text.Encoding.UTF8.GetBytes(String.Join("\n", csv)))
                let d = Dataset.openFolder false temp.Path
                match d.Source with
                | Manifest path -> Expect.stringEnds path "UrbanSound8K.csv" "manifest found"
                | other -> failtestf "expected a manifest, was %A" other
                Expect.equal d.Labels [| "air_conditioner"; "children_playing"; "dog_bark"; "gun_shot" |] "labels from every row"
                Expect.equal d.Items.Length 4 "four files present"
                let bark = d.Items |> Array.find (fun i -> i.Path.EndsWith "101415-3-0-2.wav")
                Expect.equal (bark.Label, bark.LabelIndex, bark.Fold) ("dog_bark", 2, Some 2) "label index and fold"
                Expect.equal d.Skipped.Length 1 "the missing file is reported"
                Expect.stringContains d.Skipped.[0].Reason "not found" "reason"
                Expect.equal d.Skipped.[0].Path (Path.GetFullPath(temp.Combine "audio/fold3/missing.wav")) "named where its fold puts it, not beside the metadata"

            testCase "finds bare file names in sub-folders, as GTZAN's features CSV lists them" <| fun () ->
                use temp = new TempFolder()
                for genre in [ "blues"; "jazz" ] do
                    write (temp.Combine(sprintf "genres_original/%s/%s.00000.wav" genre genre)) (toneWav 22050 2205)
                let csv = "filename,length,label\nblues.00000.wav,66149,blues\njazz.00000.wav,66149,jazz\n"
                write (temp.Combine "features_30_sec.csv") (Text.Encoding.UTF8.GetBytes csv)
                let d = Dataset.openFolder false temp.Path
                Expect.equal (d.Items |> Array.map (fun i -> i.Key, i.Label)) [| "genres_original/blues/blues.00000.wav", "blues"; "genres_original/jazz/jazz.00000.wav", "jazz" |] "items"

            testCase "ignores a CSV naming no existing file and falls back to class folders" <| fun () ->
                use temp = new TempFolder()
                write (temp.Combine "cat/a.wav") (toneWav 8000 800)
                write (temp.Combine "notes.csv") (Text.Encoding.UTF8.GetBytes "file,label\nelsewhere.wav,dog\n")
                let d = Dataset.openFolder false temp.Path
                Expect.equal d.Source FolderPerClass "folder per class"
                Expect.equal d.Labels [| "cat" |] "labels"

            testCase "uses an explicit column mapping" <| fun () ->
                use temp = new TempFolder()
                write (temp.Combine "clips/a.wav") (toneWav 8000 800)
                write (temp.Combine "clips/b.wav") (toneWav 8000 800)
                write (temp.Combine "list.csv") (Text.Encoding.UTF8.GetBytes "who,what,where\nann,cat,clips/a.wav\nbob,dog,clips/b.wav\n")
                let columns = { PathColumn = "where"; LabelColumn = "what"; SpeakerColumn = Some "who"; FoldColumn = None }
                let d = Dataset.openManifest false (Some columns) (temp.Combine "list.csv")
                Expect.equal (d.Items |> Array.map (fun i -> i.Label, i.Speaker)) [| "cat", Some "ann"; "dog", Some "bob" |] "items"

            testCase "names the missing column" <| fun () ->
                use temp = new TempFolder()
                write (temp.Combine "list.csv") (Text.Encoding.UTF8.GetBytes "path,label\na.wav,x\n")
                let columns = { PathColumn = "path"; LabelColumn = "label"; SpeakerColumn = Some "talker"; FoldColumn = None }
                try
                    Dataset.openManifest false (Some columns) (temp.Combine "list.csv") |> ignore
                    failtest "expected DatasetException"
                with :? DatasetException as e -> Expect.stringContains e.Message "talker" "names the column"
        ]

        testList "stream" [
            let items n =
                Array.init n (fun i ->
                    { Path = sprintf "/x/%d.wav" i; Key = sprintf "%04d" i; Label = "a"; LabelIndex = 0; Speaker = None; Fold = None
                      Index = Some i; Subset = None; SampleRate = 8000; Channels = 1; Frames = 1L })

            testCase "keeps order and batch sizes, the last batch shorter" <| fun () ->
                let batches = Dataset.stream 4 (fun i -> i.Index.Value * 2) (items 10) |> Seq.toArray
                Expect.equal (batches |> Array.map Array.length) [| 4; 4; 2 |] "batch sizes"
                Expect.equal (batches |> Array.concat |> Array.map snd) (Array.init 10 (fun i -> i * 2)) "values in order"

            testCase "loads nothing until iterated and keeps at most readAhead + 1 batches in memory" <| fun () ->
                let loaded = ref 0
                let live = ref 0
                let most = ref 0
                let load (i: Item) =
                    Interlocked.Increment loaded |> ignore
                    let now = Interlocked.Increment live
                    let mutable seen = most.Value
                    while now > seen && Interlocked.CompareExchange(most, now, seen) <> seen do
                        seen <- most.Value
                    Thread.Sleep 1
                    i.Index.Value
                let s = Dataset.streamWith 2 5 load (items 200)
                Thread.Sleep 20
                Expect.equal loaded.Value 0 "lazy"
                for batch in s do
                    Thread.Sleep 2
                    Interlocked.Add(live, -batch.Length) |> ignore
                Expect.equal loaded.Value 200 "every item loaded once"
                Expect.isLessThanOrEqual most.Value 15 "at most (2 + 1) batches of 5 alive"

            testCase "raises a load failure when its batch is reached" <| fun () ->
                let s = Dataset.stream 2 (fun i -> if i.Index = Some 3 then raise (AudioFormatException("/x/3.wav", "bad")) else 0) (items 6)
                Expect.throwsT<AudioFormatException> (fun () -> s |> Seq.iter ignore) "failure surfaces"
        ]

        testList "reading an item" [
            testCase "AudioFile.read reads an item as mono at the requested rate" <| fun () ->
                use temp = new TempFolder()
                write (temp.Combine "words/yes/a_nohash_0.wav") (toneWav 16000 1600)
                let d = Dataset.openFolder false (temp.Combine "words")
                let item = d.Items.[0]
                let native = (AudioFile.read AudioFile.defaults item.Path).Samples.[0]
                Expect.equal native.Length 1600 "native rate"
                let at rate = (AudioFile.read { AudioFile.defaults with SampleRate = Some rate } item.Path).Samples.[0]
                Expect.equal (at 8000).Length 800 "resampled to 8 kHz"
                Expect.equal (at 16000) native "same rate: unchanged"
        ]

        testList "FSDD" [
            testWithFsdd "opens the shared FSDD with 2,500 items, 5 speakers and nothing skipped" <| fun dir ->
                let d = Dataset.openFolder false dir
                Expect.equal d.Source Fsdd "FSDD"
                Expect.equal d.Items.Length 2500 "items"
                Expect.equal (Dataset.speakers d.Items).Length 5 "speakers"
                Expect.isEmpty d.Skipped "skipped"
                Expect.isTrue (d.Items |> Array.forall (fun i -> i.SampleRate = 8000 && i.Channels = 1)) "8 kHz mono"

            testWithFsdd "loads recordings as mono through the stream" <| fun dir ->
                let d = Dataset.openFolder false dir
                let first = d.Items.[.. 63]
                let batches = Dataset.stream 16 (fun i -> (AudioFile.read { AudioFile.defaults with SampleRate = Some 8000 } i.Path).Samples.[0]) first |> Seq.toArray
                Expect.equal batches.Length 4 "four batches"
                for (item, samples) in Array.concat batches do
                    Expect.equal (int64 samples.Length) item.Frames (sprintf "%s length" item.Key)
        ]
    ]
