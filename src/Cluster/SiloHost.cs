using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Connections.Security;

namespace Hybrid.Cluster;

/// <summary>Settings of a silo started by <c>cluster silo</c> (the CLI's options in brackets).</summary>
public sealed record SiloSettings
{
    /// <summary>Silo-to-silo port (--port; default 11111).</summary>
    public int Port { get; init; } = 11111;
    /// <summary>Client gateway port (--gateway-port; default 30000).</summary>
    public int GatewayPort { get; init; } = 30000;
    /// <summary>Address the silo listens on and advertises (--address; default 127.0.0.1, loopback).</summary>
    public string Address { get; init; } = "127.0.0.1";
    /// <summary>HOST:PORT of a running silo (its silo port) to join (--seed); none: this silo starts a cluster.
    /// Used only without a clustering provider in <see cref="Config"/>.</summary>
    public string? Seed { get; init; }
    /// <summary>PKCS#12 certificate with its private key (--certificate FILE.pfx) for mutual TLS between silos and
    /// clients (Microsoft.Orleans.Connections.Security); required on a non-loopback address. A peer is accepted when
    /// it presents this same certificate (one self-signed certificate shared by the cluster) or one that validates
    /// fully against the machine's trusted roots, host name included (see <see cref="SiloHost"/>).</summary>
    public string? Certificate { get; init; }
    /// <summary>Password of <see cref="Certificate"/> (read by the CLI from the variable named by --certificate-password-env).</summary>
    public string? CertificatePassword { get; init; }
    /// <summary>JSON configuration file (--config) read by Orleans: membership through its providers, e.g.
    /// "Orleans": { "Clustering": { "ProviderType": "AdoNet", ... } } or "Redis" (docs/scale-out.md).</summary>
    public string? Config { get; init; }
    /// <summary>Orleans cluster id (default "hybrid"); silos and clients of one cluster share it.</summary>
    public string ClusterId { get; init; } = "hybrid";
    /// <summary>Orleans service id (default "hybrid").</summary>
    public string ServiceId { get; init; } = "hybrid";
}

/// <summary>Starting silos and clients for Hybrid's grains with the project's security rule: loopback unless told
/// otherwise, and a non-loopback endpoint only with TLS.</summary>
public static class SiloHost
{
    /// <summary>Parses "HOST:PORT" (a name or an address) given with <paramref name="option"/>; raises
    /// <see cref="ClusterException"/> naming the option when it is not one.</summary>
    public static IPEndPoint ParseEndpoint(string text, string option)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out var port) || port < 1 || port > 65535)
            throw new ClusterException($"{option} {text}: expected HOST:PORT with a port in 1..65535.");
        return new IPEndPoint(Resolve(text[..colon].Trim('[', ']'), option), port);
    }

    private static IPAddress Resolve(string host, string option)
    {
        if (IPAddress.TryParse(host, out var address)) return address;
        try
        {
            var all = Dns.GetHostAddresses(host);
            return all.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
                ?? all.FirstOrDefault()
                ?? throw new ClusterException($"{option} {host}: the name has no address.");
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new ClusterException($"{option} {host}: the name cannot be resolved ({e.Message}).", e);
        }
    }

    /// <summary>Checks <paramref name="settings"/> before anything listens: ports in range, a readable certificate,
    /// and TLS for any non-loopback address or seed. Raises <see cref="ClusterException"/> naming the option.</summary>
    public static void Check(SiloSettings settings)
    {
        if (settings.Port is < 1 or > 65535) throw new ClusterException($"--port {settings.Port}: expected 1..65535.");
        if (settings.GatewayPort is < 1 or > 65535) throw new ClusterException($"--gateway-port {settings.GatewayPort}: expected 1..65535.");
        if (settings.Port == settings.GatewayPort) throw new ClusterException($"--port and --gateway-port are both {settings.Port}; they must differ.");
        var address = Resolve(settings.Address, "--address");
        var seed = settings.Seed is null ? null : ParseEndpoint(settings.Seed, "--seed");
        if (settings.Certificate is { } certificate && !File.Exists(certificate))
            throw new ClusterException($"--certificate {certificate}: file not found.");
        if (settings.Config is { } config && !File.Exists(config))
            throw new ClusterException($"--config {config}: file not found.");
        if (settings.Certificate is null)
        {
            if (!IPAddress.IsLoopback(address))
                throw new ClusterException($"--address {settings.Address}: a silo on a non-loopback address must use TLS; give --certificate FILE.pfx (refusing to start).");
            if (seed is not null && !IPAddress.IsLoopback(seed.Address))
                throw new ClusterException($"--seed {settings.Seed}: joining a silo on a non-loopback address needs TLS; give --certificate FILE.pfx (refusing to start).");
        }
    }

    /// <summary>Hybrid's TLS rule for silos and clients: each side presents <paramref name="certificate"/> (a silo
    /// requires a client certificate too), and a remote certificate is accepted when it is the same certificate (the
    /// cluster shares one self-signed certificate) or validates without any error against the trusted roots. Anything
    /// else (no certificate, another self-signed one, an expired or untrusted one) ends the handshake.</summary>
    internal static void Secure(TlsOptions options, X509Certificate2 certificate, bool silo)
    {
        options.LocalCertificate = certificate;
        options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        if (silo) options.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.RemoteCertificateValidation = (remote, _, errors) =>
            errors == SslPolicyErrors.None || remote.RawDataMemory.Span.SequenceEqual(certificate.RawDataMemory.Span);
    }

    private static X509Certificate2 LoadCertificate(string path, string? password)
    {
        X509Certificate2 certificate;
        try { certificate = X509CertificateLoader.LoadPkcs12FromFile(path, password); }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            var which = password is null
                ? "without a password (the command line reads it from $HYBRID_CERTIFICATE_PASSWORD, which is not set)"
                : "with the password given (on the command line, $HYBRID_CERTIFICATE_PASSWORD)";
            throw new ClusterException($"--certificate {path}: not a readable PKCS#12 certificate {which} ({e.Message}).", e);
        }
        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw new ClusterException($"--certificate {path}: the certificate has no private key; TLS needs the .pfx exported with its key.");
        }
        return certificate;
    }

    /// <summary>Builds (does not start) a silo host for <paramref name="settings"/> after <see cref="Check"/>.
    /// Membership: Orleans' provider named in the --config file's "Orleans:Clustering" section when there is one,
    /// otherwise development clustering with the seed (or this silo) as primary.</summary>
    public static IHost Build(SiloSettings settings, Action<ILoggingBuilder>? logging = null)
    {
        Check(settings);
        var address = Resolve(settings.Address, "--address");
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        if (settings.Config is { } config) builder.Configuration.AddJsonFile(Path.GetFullPath(config), optional: false);
        builder.Logging.ClearProviders();
        if (logging is not null) logging(builder.Logging);
        else builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        var configured = builder.Configuration.GetSection("Orleans:Clustering").Exists();
        builder.UseOrleans(silo =>
        {
            if (!configured)
            {
                var primary = settings.Seed is null ? new IPEndPoint(address, settings.Port) : ParseEndpoint(settings.Seed, "--seed");
                silo.UseDevelopmentClustering(primary);
            }
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = builder.Configuration["Orleans:ClusterId"] ?? settings.ClusterId;
                o.ServiceId = builder.Configuration["Orleans:ServiceId"] ?? settings.ServiceId;
            });
            silo.ConfigureEndpoints(address, settings.Port, settings.GatewayPort, listenOnAnyHostAddress: false);
            if (settings.Certificate is { } path)
            {
                var certificate = LoadCertificate(path, settings.CertificatePassword);
                silo.UseTls(certificate, o => Secure(o, certificate, silo: true));
            }
            silo.AddHybridGrains();
        });
        return builder.Build();
    }

    /// <summary>Connects a client to the silo gateway at <paramref name="gateway"/> (HOST:PORT, --cluster) with the
    /// same security rule (TLS with <paramref name="certificate"/> for a non-loopback gateway). Dispose the host to
    /// disconnect; the client is <c>host.Services.GetRequiredService&lt;IClusterClient&gt;()</c>. Raises
    /// <see cref="ClusterException"/> naming --cluster when no connection is made within <paramref name="timeout"/>
    /// (default 30 s): nothing listening, or a TLS handshake refused (a client without TLS or with another
    /// certificate than the cluster's; Orleans' client retries such a gateway rather than failing).</summary>
    public static async Task<IHost> ConnectAsync(string gateway, string? certificate = null, string? password = null,
        string clusterId = "hybrid", string serviceId = "hybrid", TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        var endpoint = ParseEndpoint(gateway, "--cluster");
        if (certificate is null && !IPAddress.IsLoopback(endpoint.Address))
            throw new ClusterException($"--cluster {gateway}: a non-loopback cluster needs TLS; give --certificate FILE.pfx.");
        if (certificate is not null && !File.Exists(certificate)) throw new ClusterException($"--certificate {certificate}: file not found.");
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(client =>
        {
            client.UseStaticClustering(endpoint);
            client.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = clusterId;
                o.ServiceId = serviceId;
            });
            if (certificate is not null)
            {
                var local = LoadCertificate(certificate, password);
                client.UseTls(local, o => Secure(o, local, silo: false));
            }
        });
        var host = builder.Build();
        using var within = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        within.CancelAfter(limit);
        try
        {
            await host.StartAsync(within.Token);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            host.Dispose();
            throw new ClusterException($"--cluster {gateway}: no connection to a silo gateway there within {limit.TotalSeconds:0} s (is a silo running there? a TLS cluster needs --certificate with the cluster's certificate).", e);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            host.Dispose();
            throw new ClusterException($"--cluster {gateway}: cannot connect to a silo gateway there ({e.Message}).", e);
        }
        return host;
    }
}
