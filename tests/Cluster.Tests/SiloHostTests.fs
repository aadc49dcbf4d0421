/// Silo and client hosting: the security rule (loopback, or TLS) and a real silo on loopback serving a run.
module Hybrid.ClusterTests.SiloHostTests

open System
open System.IO
open System.Net
open System.Net.Sockets
open Expecto
open Microsoft.Extensions.DependencyInjection
open Microsoft.Extensions.Hosting
open Orleans
open Hybrid.Dsp.Managed
open Hybrid.Classifier
open Hybrid.Cluster

let private freePort () =
    let l = new TcpListener(IPAddress.Loopback, 0)
    l.Start()
    let port = (l.LocalEndpoint :?> IPEndPoint).Port
    l.Stop()
    port

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

        testCase "a loopback silo from SiloHost serves a client from ConnectAsync: one worker trains a run folder" (fun () ->
            let siloPort, gatewayPort = freePort (), freePort ()
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
    ]
