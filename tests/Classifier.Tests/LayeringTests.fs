/// The layering the compiler enforces: the network core (src/Network, assembly Hybrid.Network) knows nothing of audio.
/// It may reference Hybrid.Dsp.Kernels (engines and their `Nn` operations) and no other Hybrid assembly; the façade
/// (Hybrid.Classifier) composes audio features and the network on top of it.
module Hybrid.ClassifierTests.LayeringTests

open System.IO
open System.Xml.Linq
open Expecto
open Hybrid.Classifier
open Hybrid.TestSupport

/// The Hybrid assemblies the network core may reference.
let private allowed = set [ "Hybrid.Dsp.Kernels" ]

[<Tests>]
let tests =
    testList "Layering" [
        test "the network core's types live in Hybrid.Network" {
            for t in [ typeof<Net>; typeof<Model>; typeof<Trainer>; typeof<ModelInfo>; typeof<ModelFileException>; typeof<FitOptions> ] do
                Expect.equal (t.Assembly.GetName().Name) "Hybrid.Network" (sprintf "%s's assembly" t.Name)
            Expect.equal (typeof<AudioClassifier>.Assembly.GetName().Name) "Hybrid.Classifier" "the façade stays in Hybrid.Classifier"
        }

        test "Hybrid.Network references no Hybrid assembly but Hybrid.Dsp.Kernels (no features, schemas, cluster or façade)" {
            let referenced =
                typeof<Net>.Assembly.GetReferencedAssemblies()
                |> Array.choose (fun a -> match a.Name with null -> None | n -> Some n)
                |> Array.filter (fun n -> n.StartsWith "Hybrid.")
                |> Set.ofArray
            Expect.isEmpty (Set.difference referenced allowed)
                (sprintf "Hybrid.Network must not know about audio; it references %s" (String.concat ", " referenced))
            Expect.contains referenced "Hybrid.Dsp.Kernels" "it runs on the engines of Hybrid.Dsp.Kernels"
        }

        test "src/Network/Network.fsproj references only src/Dsp.Kernels" {
            let root =
                match TestData.repositoryRoot () with
                | Some r -> r
                | None -> failtest "the repository root (the folder holding Hybrid.sln) was not found above the test binaries"
            let project = XDocument.Load(Path.Combine(root, "src", "Network", "Network.fsproj"))
            let references =
                project.Descendants(XName.Get "ProjectReference")
                |> Seq.map (fun e -> match e.Attribute(XName.Get "Include") with null -> "" | a -> a.Value.Replace('\\', '/'))
                |> List.ofSeq
            Expect.equal references [ "../Dsp.Kernels/Dsp.Kernels.csproj" ] "the network core's project references"
        }
    ]
