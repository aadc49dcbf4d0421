/// Silo and client hosting: the security rule (loopback, or TLS), a real silo on loopback serving a run, and mutual TLS
/// with a self-signed certificate made in the test.
module Hybrid.ClusterTests.SiloHostTests

open System
open System.IO
open Expecto
open Hybrid.TestSupport.Speed
open Microsoft.Extensions.DependencyInjection
open Microsoft.Extensions.Hosting
open Orleans
open Hybrid.Dsp.Managed
open Hybrid.Classifier
open Hybrid.Features
open Hybrid.Features.Schemas
open Hybrid.Cluster

let private refused (settings: SiloSettings) (fragment: string) =
    let e = Expect.throwsC (fun () -> SiloHost.Check settings) id
    Expect.isTrue (e :? ClusterException) (sprintf "a ClusterException, was %s" (e.GetType().Name))
    Expect.stringContains e.Message fragment "the message names the option"
    let built = Expect.throwsC (fun () -> (SiloHost.Build settings).Dispose()) id
    Expect.isTrue (built :? ClusterException) "Build refuses it too"

[<Tests>]
let tests =
    testSequencedGroup "orleans" <| testList "SiloHost" [
        testCase "a silo on a non-loopback address without TLS refuses to start, naming --address" (fun () ->
            refused (SiloSettings(Address = "10.1.2.3")) "--address 10.1.2.3: a silo on a non-loopback address must use TLS")

        testCase "joining a non-loopback seed without TLS is refused, naming --seed" (fun () ->
            refused (SiloSettings(Seed = "192.168.7.1:11111")) "--seed 192.168.7.1:11111")

        testCase "a missing certificate, a bad seed and equal ports are refused, naming the option" (fun () ->
            refused (SiloSettings(Address = "10.1.2.3", Certificate = "/nonexistent/cluster.pfx")) "--certificate /nonexistent/cluster.pfx: file not found"
            refused (SiloSettings(Seed = "localhost")) "--seed localhost: expected HOST:PORT"
            refused (SiloSettings(Port = 30000, GatewayPort = 30000)) "--port and --gateway-port")

        testCase "a client refuses a non-loopback gateway without TLS" (fun () ->
            let e = Expect.throwsC (fun () -> SiloHost.ConnectAsync("10.1.2.3:30000").Wait()) id
            let inner = match e with :? AggregateException as a -> a.InnerException | e -> e
            Expect.stringContains (nonNull inner).Message "--cluster 10.1.2.3:30000" "names --cluster")

        slow <| testCase "a loopback silo from SiloHost serves a client from ConnectAsync: one worker trains a run folder" (fun () ->
            let siloPort, gatewayPort = TestClusters.freePort (), TestClusters.freePort ()
            use silo = SiloHost.Build(SiloSettings(Port = siloPort, GatewayPort = gatewayPort), (fun l -> ()))
            Expect.isTrue (silo.StartAsync().Wait(TimeSpan.FromSeconds 60.0)) "the silo started"
            try
                use client = SiloHost.ConnectAsync(sprintf "127.0.0.1:%d" gatewayPort).Result
                let grains = client.Services.GetRequiredService<IClusterClient>()
                let dir = Path.Combine(Path.GetTempPath(), "hybrid-silo-" + Guid.NewGuid().ToString("N"))
                let rng = Random(4)
                let train = { Inputs = Array.init (32 * 6) (fun _ -> float32 (rng.NextDouble() * 2.0 - 1.0)); Labels = Array.init 32 (fun i -> i % 2) }
                let net = Net.sequential [ 6 ] [ Layers.dense 4; Layers.relu; Layers.dense 2 ]
                let options = { FitOptions.defaults with Epochs = 2; BatchSize = 8; Optimizer = Optimizer.sgd 0.1; Seed = 2 }
                do
                    use engine = new ManagedEngine(1)
                    DataParallel.prepare dir options (Model.create engine 1 net) train
                let expected =
                    use engine = new ManagedEngine(1)
                    let model = Model.create engine 1 net
                    Training.fit options model train None |> ignore
                    model.Snapshot() |> Array.concat
                let task = DataParallelTrainer.RunAsync(grains, dir, ClusterTrainingOptions(1))
                Expect.isTrue (task.Wait(TimeSpan.FromSeconds 60.0)) "the run finished"
                Expect.equal task.Result.Steps 8 "2 epochs of 4 steps"
                use engine = new ManagedEngine(1)
                let model = Model.create engine 0 net
                DataParallel.load dir model |> ignore
                // One worker computes exactly Training.fit's step: the same weights bit for bit.
                Expect.equal (model.Snapshot() |> Array.concat) expected "one worker = Training.fit"
                Directory.Delete(dir, true)
            finally
                silo.StopAsync().Wait(TimeSpan.FromSeconds 30.0) |> ignore)

        slow <| testCase "a TLS silo on loopback serves a client holding the cluster's self-signed certificate: an extraction runs through it" (fun () ->
            let pfx, password = TestClusters.selfSignedPfx "hybrid-cluster"
            let root, items = DistributedExtractionTests.dataset 3
            let cache = root + "-cache"
            try
                TestClusters.withSilo (Some(pfx, password)) (fun gateway ->
                    use client = SiloHost.ConnectAsync(gateway, pfx, password).Result
                    let grains = client.Services.GetRequiredService<IClusterClient>()
                    let task = DistributedExtraction.RunAsync(grains, root, ResizeArray items, cache, DistributedExtractionTests.schemaName, ClusterExtractionOptions(Workers = 1, Engine = "managed"))
                    Expect.isTrue (task.Wait(TimeSpan.FromSeconds 60.0)) "the extraction finished within 60 s"
                    Expect.equal (task.Result.Shards, task.Result.Written) (1, 1) "one shard, written over TLS"
                    let expected = DistributedExtractionTests.localRows items
                    let shard = Shards.list (Shards.folderOf cache (Schemas.ByName DistributedExtractionTests.schemaName).Fingerprint) |> Array.exactlyOne
                    Expect.equal (Array.sort shard.Keys) (expected |> Map.toArray |> Array.map fst) "every readable recording's row"
                    for r in 0 .. shard.Rows - 1 do
                        Expect.isTrue (shard.Values[r * shard.RowLength .. (r + 1) * shard.RowLength - 1] = expected[shard.Keys[r]]) (sprintf "%s: the managed engine's row" shard.Keys[r]))
            finally
                File.Delete pfx
                Directory.Delete(root, true)
                if Directory.Exists cache then Directory.Delete(cache, true))

        slow <| testCase "a TLS silo refuses a client without TLS and a client with another certificate" (fun () ->
            let pfx, password = TestClusters.selfSignedPfx "hybrid-cluster"
            let other, otherPassword = TestClusters.selfSignedPfx "hybrid-intruder"
            let refusedWith (connect: unit -> Threading.Tasks.Task<IHost>) (what: string) =
                let task = connect ()
                let finished = try task.Wait(TimeSpan.FromSeconds 60.0) with _ -> true
                Expect.isTrue finished (sprintf "%s: the attempt ended within 60 s" what)
                Expect.isTrue task.IsFaulted (sprintf "%s: refused" what)
                let inner = (nonNull task.Exception).InnerException
                Expect.isTrue (inner :? ClusterException) (sprintf "%s: a ClusterException, was %O" what inner)
                Expect.stringContains (nonNull inner).Message "--cluster 127.0.0.1:" (sprintf "%s: the message names --cluster" what)
            try
                TestClusters.withSilo (Some(pfx, password)) (fun gateway ->
                    refusedWith (fun () -> SiloHost.ConnectAsync(gateway, timeout = TimeSpan.FromSeconds 10.0)) "a client without TLS"
                    refusedWith (fun () -> SiloHost.ConnectAsync(gateway, other, otherPassword, timeout = TimeSpan.FromSeconds 10.0)) "a client with another self-signed certificate"
                    // The right certificate still gets in after the refusals.
                    use client = SiloHost.ConnectAsync(gateway, pfx, password).Result
                    let grains = client.Services.GetRequiredService<IClusterClient>()
                    Expect.stringContains (grains.GetGrain<IShardWorker>("probe/0").Silo().Result) "127.0.0.1" "a grain answers over TLS")
            finally
                File.Delete pfx
                File.Delete other)

        testCase "a certificate file without its private key is refused, naming --certificate" (fun () ->
            let pfx, password = TestClusters.selfSignedPfx "hybrid-public"
            let publicOnly = pfx + ".cer.pfx"
            try
                use full = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(pfx, password)
                use bare = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(full.RawData)
                File.WriteAllBytes(publicOnly, bare.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pkcs12))
                let e = Expect.throwsC (fun () -> (SiloHost.Build(SiloSettings(Address = "127.0.0.1", Port = TestClusters.freePort (), GatewayPort = TestClusters.freePort (), Certificate = publicOnly))).Dispose()) id
                Expect.isTrue (e :? ClusterException) (sprintf "a ClusterException, was %s: %s" (e.GetType().Name) e.Message)
                Expect.stringContains e.Message (sprintf "--certificate %s" publicOnly) "names the option and file"
            finally
                File.Delete pfx
                File.Delete publicOnly)
    ]
