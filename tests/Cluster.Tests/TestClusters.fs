/// In-process Orleans test clusters (three silos on loopback in this process) with short failure detection, so a
/// killed silo is noticed in seconds and every test stays bounded in time.
module Hybrid.ClusterTests.TestClusters

open System
open Microsoft.Extensions.Configuration
open Orleans.Configuration
open Orleans.Hosting
open Orleans.TestingHost
open Hybrid.Cluster

/// Silo settings of the tests: Hybrid's grains, fast probing, short call limits.
type SiloSettings() =
    interface ISiloConfigurator with
        member _.Configure(builder: ISiloBuilder) =
            builder.AddHybridGrains() |> ignore
            builder.Configure<ClusterMembershipOptions>(fun (o: ClusterMembershipOptions) ->
                o.ProbeTimeout <- TimeSpan.FromSeconds 1.0
                o.NumMissedProbesLimit <- 2
                o.NumVotesForDeathDeclaration <- 1
                o.TableRefreshTimeout <- TimeSpan.FromSeconds 1.0
                o.IAmAliveTablePublishTimeout <- TimeSpan.FromSeconds 2.0) |> ignore
            builder.Configure<SiloMessagingOptions>(fun (o: SiloMessagingOptions) ->
                o.ResponseTimeout <- TimeSpan.FromSeconds 60.0
                o.SystemResponseTimeout <- TimeSpan.FromSeconds 60.0) |> ignore

/// Client settings of the tests: short call limits.
type ClientSettings() =
    interface IClientBuilderConfigurator with
        member _.Configure(_: IConfiguration, builder: IClientBuilder) =
            builder.Configure<ClientMessagingOptions>(fun (o: ClientMessagingOptions) ->
                o.ResponseTimeout <- TimeSpan.FromSeconds 60.0) |> ignore

/// Starts an in-process cluster of `silos` silos (loopback); dispose it to stop every silo.
let start (silos: int) =
    let builder = TestClusterBuilder(int16 silos)
    builder.Options.ConfigureFileLogging <- false
    builder.AddSiloBuilderConfigurator<SiloSettings>() |> ignore
    builder.AddClientBuilderConfigurator<ClientSettings>() |> ignore
    let cluster = builder.Build()
    cluster.DeployAsync().Wait(TimeSpan.FromSeconds 60.0) |> function
        | true -> ()
        | false -> failwith "the test cluster did not start within 60 s"
    cluster
