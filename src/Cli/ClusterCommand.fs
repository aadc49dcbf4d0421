/// `hybrid cluster silo`: starts an Orleans silo hosting Hybrid's grains (data-parallel training workers), on loopback
/// unless told otherwise; a non-loopback silo needs TLS (--certificate) or refuses to start.
module Hybrid.Cli.ClusterCommand

open System
open System.IO
open System.Threading
open Argu
open Microsoft.Extensions.Hosting
open Hybrid.Cluster

/// The options of `cluster silo`.
type SiloArgs =
    | Port of port: int
    | Gateway_Port of port: int
    | Address of address: string
    | Seed of endpoint: string
    | Certificate of file: string
    | Config of file: string
    | Cluster_Id of id: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Port _ -> "silo-to-silo port (default 11111)."
            | Gateway_Port _ -> "client gateway port, the HOST:PORT that `train --cluster` connects to (default 30000)."
            | Address _ -> "address to listen on (default 127.0.0.1); a non-loopback address needs --certificate."
            | Seed _ -> "HOST:PORT (silo port) of a running silo to join; without it this silo starts the cluster."
            | Certificate _ -> "PKCS#12 file with the certificate and its private key for mutual TLS between silos and clients: the same cluster certificate on every silo and client, or one every machine trusts (password from $HYBRID_CERTIFICATE_PASSWORD; docs/scale-out.md shows how to make one)."
            | Config _ -> "JSON configuration read by Orleans, e.g. membership through a clustering provider (Orleans:Clustering:ProviderType AdoNet); see docs/scale-out.md."
            | Cluster_Id _ -> "Orleans cluster id shared by the silos and clients of one cluster (default hybrid)."

/// Runs `cluster silo [options]` until Ctrl+C (or SIGTERM). Exit codes: 0 stopped; 1 refused or failed; 2 bad options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    match List.ofArray argv with
    | "silo" :: rest ->
        Command.run<SiloArgs> "cluster silo" out error (Array.ofList rest) (fun args ->
            let settings =
                SiloSettings(
                    Port = args.GetResult(Port, defaultValue = 11111),
                    GatewayPort = args.GetResult(Gateway_Port, defaultValue = 30000),
                    Address = args.GetResult(Address, defaultValue = "127.0.0.1"),
                    Seed = Option.toObj (args.TryGetResult Seed),
                    Certificate = Option.toObj (args.TryGetResult Certificate),
                    CertificatePassword = Environment.GetEnvironmentVariable "HYBRID_CERTIFICATE_PASSWORD",
                    Config = Option.toObj (args.TryGetResult Config),
                    ClusterId = args.GetResult(Cluster_Id, defaultValue = "hybrid"))
            use host = SiloHost.Build settings
            use stop = new CancellationTokenSource()
            Console.CancelKeyPress.Add(fun e ->
                e.Cancel <- true
                stop.Cancel())
            host.Start()
            out.WriteLine(sprintf "cluster silo: listening on %s:%d (silo) and %s:%d (gateway), cluster %s; Ctrl+C stops it"
                              settings.Address settings.Port settings.Address settings.GatewayPort settings.ClusterId)
            out.Flush()
            host.WaitForShutdownAsync(stop.Token).Wait()
            0)
    | [] | [ "--help" ] | [ "help" ] ->
        out.WriteLine "usage: hybrid cluster silo [--port P] [--gateway-port G] [--address A] [--seed HOST:PORT] [--certificate FILE.pfx] [--config FILE.json] [--cluster-id ID]"
        0
    | other :: _ ->
        error.WriteLine(sprintf "cluster: unknown subcommand '%s' (expected: silo)" other)
        2
