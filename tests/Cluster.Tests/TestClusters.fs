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

/// A free TCP port on loopback (for silos started through SiloHost).
let freePort () =
    let l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0)
    l.Start()
    let port = (l.LocalEndpoint :?> System.Net.IPEndPoint).Port
    l.Stop()
    port

/// Runs `body` with the gateway ("127.0.0.1:PORT") of one silo built by SiloHost.Build (what `cluster silo` runs) on
/// free loopback ports, with TLS when a PKCS#12 file and its password are given; the silo is stopped afterwards.
let withSilo (certificate: (string * string) option) (body: string -> unit) =
    let siloPort, gatewayPort = freePort (), freePort ()
    let settings =
        match certificate with
        | None -> Hybrid.Cluster.SiloSettings(Port = siloPort, GatewayPort = gatewayPort)
        | Some(file, password) -> Hybrid.Cluster.SiloSettings(Port = siloPort, GatewayPort = gatewayPort, Certificate = file, CertificatePassword = password)
    use silo = SiloHost.Build(settings, (fun _ -> ()))
    if not (silo.StartAsync().Wait(TimeSpan.FromSeconds 60.0)) then failwith "the silo did not start within 60 s"
    try body (sprintf "127.0.0.1:%d" gatewayPort)
    finally silo.StopAsync().Wait(TimeSpan.FromSeconds 30.0) |> ignore

/// A self-signed certificate for CN=`name` (RSA 2048, server and client authentication, valid for a day), written
/// with its private key as a PKCS#12 file under the temporary folder: (file, password). Nothing is checked in.
let selfSignedPfx (name: string) =
    use rsa = System.Security.Cryptography.RSA.Create 2048
    let request =
        System.Security.Cryptography.X509Certificates.CertificateRequest(
            "CN=" + name, rsa, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1)
    let usages = System.Security.Cryptography.OidCollection()
    usages.Add(System.Security.Cryptography.Oid "1.3.6.1.5.5.7.3.1") |> ignore
    usages.Add(System.Security.Cryptography.Oid "1.3.6.1.5.5.7.3.2") |> ignore
    request.CertificateExtensions.Add(System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension(usages, false))
    let names = System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder()
    names.AddDnsName "localhost"
    names.AddIpAddress System.Net.IPAddress.Loopback
    request.CertificateExtensions.Add(names.Build())
    use certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes -5.0, DateTimeOffset.UtcNow.AddDays 1.0)
    let password = Guid.NewGuid().ToString("N")
    let file = IO.Path.Combine(IO.Path.GetTempPath(), sprintf "hybrid-%s-%s.pfx" name (Guid.NewGuid().ToString("N")))
    IO.File.WriteAllBytes(file, certificate.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pfx, password))
    file, password
