using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using ActorQueue.Cluster;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;
using Akka.Remote.Transport.DotNetty;

namespace ActorQueue.Tests.Cluster;

/// <summary>How a rogue peer tries to get into a cluster.</summary>
public enum RogueKind
{
    /// <summary>No TLS at all, as every node spoke before authentication.</summary>
    Plaintext,

    /// <summary>TLS, but no client certificate.</summary>
    NoCertificate,

    /// <summary>A self-signed certificate fit for TLS client and server use.</summary>
    SelfSigned,

    /// <summary>A node certificate of another CA (another cluster's, or the attacker's own).</summary>
    OtherAuthority,
}

/// <summary>
/// An ActorQueue cluster node in this test process that holds no valid membership certificate and accepts any
/// certificate a server shows (the strongest attacker: it only lacks the cluster CA's signature). It attempts what a
/// member could do: join, take jobs from a queue, put jobs in it. <see cref="Up"/> completes if it ever becomes a
/// member. Whether it was refused is seen at the attacked node, which logs each TLS handshake it rejects
/// (<see cref="TlsRejections"/>); the rogue's own view (a failed association, or its system shutting down after a
/// failed handshake) also follows from slowness, so it proves nothing.
/// </summary>
internal sealed class RoguePeer : IAsyncDisposable
{
    private readonly TaskCompletionSource _up = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private RoguePeer(RogueKind kind, ActorSystem system)
    {
        Kind = kind;
        System = system;
        Akka.Cluster.Cluster.Get(system).RegisterOnMemberUp(() => _up.TrySetResult());
    }

    public RogueKind Kind { get; }

    public ActorSystem System { get; }

    /// <summary>Completes if this peer became a member of a cluster.</summary>
    public Task Up => _up.Task;

    /// <summary>The address of a node of the attacked cluster, in the scheme this rogue speaks.</summary>
    public Address AddressOf(int port) =>
        new(Kind == RogueKind.Plaintext ? "akka.tcp" : "akka.ssl.tcp", ActorQueueClusterRuntime.DefaultSystemName, "127.0.0.1", port);

    public static RoguePeer Start(RogueKind kind)
    {
        var config = ConfigurationFactory.ParseString($"""
                akka.remote.dot-netty.tcp.enable-ssl = {(kind == RogueKind.Plaintext ? "off" : "on")}
                akka.cluster.roles = ["worker"]
                """)
            .WithFallback(ClusterNodes.FastCluster)
            .WithFallback(ActorQueueClusterRuntime.ClusterConfig)
            .WithFallback(ActorQueueRuntime.DefaultConfig);
        var setup = BootstrapSetup.Create().WithConfig(config);
        CertificateValidationCallback acceptAnyServer = (_, _, _, _, _) => true;
        var system = kind switch
        {
            RogueKind.Plaintext => ActorSystem.Create(ActorQueueClusterRuntime.DefaultSystemName, setup),
            RogueKind.NoCertificate => ActorSystem.Create(ActorQueueClusterRuntime.DefaultSystemName,
                setup.And(new DotNettySslSetup(TestCertificates.SelfSigned(), suppressValidation: true, requireMutualAuthentication: false))),
            _ => ActorSystem.Create(ActorQueueClusterRuntime.DefaultSystemName, setup.And(new DotNettySslSetup(
                kind == RogueKind.SelfSigned ? TestCertificates.SelfSigned() : TestCertificates.Node("rogue", OtherAuthority.Value),
                suppressValidation: true, requireMutualAuthentication: true, validateCertificateHostname: false, acceptAnyServer))),
        };
        return new RoguePeer(kind, system);
    }

    /// <summary>Tries to join through <paramref name="port"/>, to run every job of the queue <paramref name="queue"/> and to put <paramref name="command"/> in it.</summary>
    /// <returns>How many jobs this peer's workers received.</returns>
    public Func<int> Attack(int port, string queue, string command)
    {
        var node = ActorQueueCluster.Get(System);
        node.Cluster.Join(AddressOf(port));
        var taken = 0;
        _ = node.RegisterWorkers<JsonElement, JsonElement>(queue, (_, _) =>
        {
            Interlocked.Increment(ref taken);
            return Task.FromResult(JsonSerializer.SerializeToElement(new { ExitCode = 0, Signal = 0, TimedOut = false, Output = "forged\n", Errors = "" }));
        });
        var job = JsonSerializer.SerializeToElement(new { Id = "rogue", Command = command, Environment = new Dictionary<string, string>(), TimeoutSeconds = (double?)null });
        _ = node.WorkQueue<JsonElement, JsonElement>(queue).SubmitAsync(job, Timeout.InfiniteTimeSpan);
        return () => Volatile.Read(ref taken);
    }

    /// <summary>
    /// Forms a cluster of its own, as a coordinator would, and puts <paramref name="command"/> in the queue
    /// <paramref name="queue"/> for any worker node that joins it.
    /// </summary>
    /// <returns>The port worker nodes are lured to.</returns>
    public async Task<int> LureAsync(string queue, string command)
    {
        var node = ActorQueueCluster.Get(System);
        await node.JoinAsync(node.Cluster.SelfAddress).WaitAsync(ClusterNodes.StepTimeout);
        var job = JsonSerializer.SerializeToElement(new { Id = "lure", Command = command, Environment = new Dictionary<string, string>(), TimeoutSeconds = (double?)null });
        _ = node.WorkQueue<JsonElement, JsonElement>(queue).SubmitAsync(job, Timeout.InfiniteTimeSpan);
        return node.Cluster.SelfAddress.Port!.Value;
    }

    /// <summary>Waits until the attacked node <paramref name="rejected"/> this peer; fails at once if it got in instead.</summary>
    public async Task WaitRefusedAsync(Task rejected)
    {
        var first = await Task.WhenAny(rejected, Up).WaitAsync(ClusterNodes.StepTimeout);
        Assert.True(first == rejected, $"the {Kind} rogue peer became a member of the cluster");
        await rejected;
    }

    public async ValueTask DisposeAsync() => await System.Terminate().WaitAsync(ClusterNodes.StepTimeout);

    /// <summary>Another CA, which the attacked cluster does not trust.</summary>
    private static readonly Lazy<X509Certificate2> OtherAuthority = new(() => ClusterCertificates.CreateAuthority("rogue CA", TimeSpan.FromDays(1)));
}
