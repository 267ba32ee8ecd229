using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;
using Akka.Configuration;
using Akka.Remote;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Adversarial review of docs/SECURITY.md's claims about a cluster node's network surface (helper 91). Both findings
/// kept here failed before and are fixed; two more (a member forging another agent's sender path; a member posing as
/// the singleton to a node) are what membership grants, written down in docs/SECURITY.md rather than guarded.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterSecurityReviewTests
{
    /// <summary>
    /// FINDING, fixed: <c>Create</c> refuses another transport, class or protocol (severity: high for a deployment that hits it; needs a configuration override, the CLI takes none):
    /// configuration overrides CAN turn TLS off and bind the network without <c>AllowNonLoopback</c>.
    /// docs/SECURITY.md ("Configuration overrides cannot turn TLS off or bind to an address the options do not allow")
    /// and <see cref="ActorQueueClusterRuntime.Create"/>'s doc ("It cannot turn the transport's TLS off, nor bind an
    /// address the options do not allow") promise this, but <c>Create</c> only forces
    /// <c>akka.remote.dot-netty.tcp.enable-ssl</c> and checks <c>akka.remote.dot-netty.tcp.hostname</c>. Akka.Remote
    /// starts every transport listed in <c>akka.remote.enabled-transports</c>, each from its own section, so an override
    /// that lists a second DotNetty section (as Akka's docs show for multi-transport setups, or copied from an older
    /// config) gets a plain-TCP listener on any address, with no certificate check at all.
    /// <para>Repro: <c>ActorQueueClusterRuntime.Create(memberOptions, overrides)</c> with
    /// <c>akka.remote.enabled-transports = ["akka.remote.dot-netty.tcp", "akka.remote.plain"]</c> and an
    /// <c>akka.remote.plain</c> section (TcpTransport, <c>enable-ssl = off</c>, <c>hostname = "0.0.0.0"</c>). Then a
    /// plaintext peer with no certificate sends <c>Identify</c> to <c>/system/actorqueue-node</c> over that port.</para>
    /// <para>Expected: <c>Create</c> throws <see cref="ArgumentException"/> (a transport other than the one it secures,
    /// TLS off, or an address not allowed). Actual: the node starts, listens in plain TCP on 0.0.0.0, answers the
    /// unauthenticated peer's <c>Identify</c>, and runs a job that peer puts into its distributed queue (an
    /// <c>AgentHello</c> in a <c>QueueEnvelope</c> to <c>/system/actorqueue-singleton/hub</c>, a trusted selection path,
    /// then a <c>ProducerAnnounce</c> answering the router's <c>RecoverQueue</c>): with <c>actorqueue node</c>'s handler
    /// that is a shell command run by anyone who reaches the port.</para>
    /// <para>Location: src/Cluster/Runtime/ActorQueueClusterRuntime.cs:61-65 (only <c>dot-netty.tcp</c> is forced and checked).</para>
    /// <para>Fix: after merging the overrides, refuse a configuration whose <c>akka.remote.enabled-transports</c> is not
    /// exactly <c>["akka.remote.dot-netty.tcp"]</c> (or force that key like <c>enable-ssl</c>), and refuse a
    /// <c>transport-class</c>/<c>transport-protocol</c> other than the DotNetty TCP one.</para>
    /// </summary>
    [Fact]
    public async Task Overrides_cannot_add_a_plain_tcp_transport_on_the_network()
    {
        var overrides = ConfigurationFactory.ParseString("""
            akka.remote.enabled-transports = ["akka.remote.dot-netty.tcp", "akka.remote.plain"]
            akka.remote.plain {
              transport-class = "Akka.Remote.Transport.DotNetty.TcpTransport, Akka.Remote"
              applied-adapters = []
              transport-protocol = tcp
              enable-ssl = off
              hostname = "0.0.0.0"
              public-hostname = "127.0.0.1"
              port = 0
              batching.enabled = true
            }
            """).WithFallback(ClusterNodes.FastCluster);

        ActorSystem node;
        try
        {
            node = ActorQueueClusterRuntime.Create(TestCertificates.MemberOptions("victim"), overrides);
        }
        catch (ArgumentException refused)
        {
            // Refused, naming the key: the promise of SECURITY.md holds.
            Assert.Contains("akka.remote.enabled-transports", refused.Message, StringComparison.Ordinal);
            return;
        }

        try
        {
            var transport = ((IRemoteActorRefProvider)((ExtendedActorSystem)node).Provider).Transport;
            var plain = transport.Addresses.Where(address => address.Protocol == "akka.tcp").ToList();
            if (plain.Count == 0)
            {
                return;
            }

            // What an unauthenticated peer gets through it.
            await using var rogue = RoguePeer.Start(RogueKind.Plaintext);
            var target = new Address("akka.tcp", ActorQueueClusterRuntime.DefaultSystemName, "127.0.0.1", plain[0].Port);
            string reached;
            try
            {
                var identity = await rogue.System.ActorSelection($"{target}/system/{NodeHostActor.ActorName}")
                    .Ask<ActorIdentity>(new Identify("rogue"), ClusterNodes.StepTimeout);
                reached = $"a plaintext peer without a certificate reached {identity.Subject}";
            }
            catch (AskTimeoutException)
            {
                reached = "a plaintext peer's Identify went unanswered";
            }

            // Through it, the unauthenticated peer puts a job into the node's distributed queue, which the node's worker runs.
            var ran = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            await ActorQueueCluster.Get(node).JoinAsync(Akka.Cluster.Cluster.Get(node).SelfAddress).WaitAsync(ClusterNodes.StepTimeout);
            await using var workers = ActorQueueCluster.Get(node).RegisterWorkers<string, string>("jobs", (job, _) =>
            {
                ran.TrySetResult(job);
                return Task.FromResult(job);
            });
            var impostor = rogue.System.ActorOf(Props.Create(() => new ImpostorProducer("\"rogue job\"")));
            rogue.System.ActorSelection($"{target}/system/actorqueue-singleton/hub").Tell(new QueueEnvelope("jobs", 100, new AgentHello(0)), impostor);
            string job;
            try
            {
                job = $"the node's worker ran its job '{await ran.Task.WaitAsync(ClusterNodes.StepTimeout)}'";
            }
            catch (TimeoutException)
            {
                job = "its job did not run";
            }

            // It listens beyond loopback (its advertised address hides it): a TCP connection to a network address of this host.
            var network = await NetworkReachAsync(plain[0].Port!.Value);
            Assert.Fail($"the node started with a TLS-less transport besides its TLS one, without AllowNonLoopback and no error: {string.Join(", ", transport.Addresses)}; {reached}; {job}; {network}");
        }
        finally
        {
            await node.Terminate().WaitAsync(ClusterNodes.StepTimeout);
        }
    }

    /// <summary>
    /// FINDING, fixed: jobs do not inherit the key passwords (severity: medium-low; secret propagation): the password of the node's private key
    /// (<c>ACTORQUEUE_CERT_PASSWORD</c>, and <c>ACTORQUEUE_CA_PASSWORD</c> when set in the same shell) is handed to every
    /// job a worker node runs, in the job's environment. docs/SECURITY.md keeps the password in an environment variable
    /// "so that it does not appear in ps or in shell history" and places it "near the node (a systemd credential, a
    /// secret store)", but <c>JobProcess</c> starts each job with the node's whole environment plus the job's own
    /// variables. Any job that prints or logs its environment (a crash handler, a CI-style <c>env</c> dump, a tool's
    /// debug output) sends the password back to the coordinator as job output, into the results and logs, next to
    /// copies of <c>node.pfx</c> it was meant to protect; the job commands are often not written by whoever deployed the
    /// node.
    /// <para>Repro: <c>actorqueue cert ca/node</c> with <c>ACTORQUEUE_CERT_PASSWORD</c> set; <c>actorqueue run - --cluster
    /// --cert-dir coordinator</c> and <c>actorqueue node --cert-dir worker</c>, both with the variable set (as they must
    /// be, to open node.pfx); the job <c>echo "pw=${ACTORQUEUE_CERT_PASSWORD:-unset}"</c>.</para>
    /// <para>Expected: <c>pw=unset</c> (the node's own secrets are not passed on to jobs unless the job's JSONL
    /// <c>env</c> names them). Actual: the coordinator prints <c>pw=</c> and the password.</para>
    /// <para>Location: src/Cli/Jobs/JobProcess.cs:130-133 (ProcessStartInfo inherits the node's environment), fed by
    /// src/Cli/Jobs/JobExecutors.cs:52.</para>
    /// <para>Fix: remove <c>ACTORQUEUE_CERT_PASSWORD</c> and <c>ACTORQUEUE_CA_PASSWORD</c> from
    /// <c>start.Environment</c> before adding the job's variables (and say so in SECURITY.md).</para>
    /// </summary>
    [Fact]
    public async Task A_worker_node_does_not_hand_its_key_password_to_the_jobs_it_runs()
    {
        const string password = "review-S3cret-pw";
        var dir = Directory.CreateTempSubdirectory("actorqueue-review-security-").FullName;
        try
        {
            var environment = new Dictionary<string, string> { ["ACTORQUEUE_CERT_PASSWORD"] = password };
            foreach (var args in new[]
            {
                new[] { "cert", "ca", "--out", "ca" },
                ["cert", "node", "--ca", "ca", "--name", "coordinator", "--out", "coordinator"],
                ["cert", "node", "--ca", "ca", "--name", "worker", "--out", "worker"],
            })
            {
                var start = ActorQueue.Tests.Cli.CliProcess.StartInfo(dir, args);
                start.Environment["ACTORQUEUE_CERT_PASSWORD"] = password;
                var made = await ActorQueue.Tests.Cli.CliProcess.RunAsync(start, null);
                Assert.True(made.ExitCode == 0, $"actorqueue {string.Join(' ', args)}: {made.Errors}");
            }

            var (coordinatorPort, nodePort) = (TestPorts.Free(), TestPorts.Free());
            using var coordinator = new ActorQueue.Tests.Cli.RunningCli(dir, environment, "run", "-", "--cluster", "--listen", $"127.0.0.1:{coordinatorPort}",
                "--cert-dir", "coordinator", "-j", "1");
            await coordinator.WaitForErrorsAsync("waiting for 1 worker node(s)");
            using var node = new ActorQueue.Tests.Cli.RunningCli(dir, environment, "node", "--seed", $"127.0.0.1:{coordinatorPort}",
                "--listen", $"127.0.0.1:{nodePort}", "--cert-dir", "worker", "-j", "1");
            await coordinator.WaitForErrorsAsync("1 worker node(s) joined");
            await coordinator.Input.WriteLineAsync("echo \"pw=${ACTORQUEUE_CERT_PASSWORD:-unset}\"");
            coordinator.Input.Close();
            Assert.True(await coordinator.ExitAsync() == 0, coordinator.Errors);
            Assert.True(await node.ExitAsync() == 0, node.Errors);

            Assert.True(!coordinator.Output.Contains(password, StringComparison.Ordinal),
                $"a job on the worker node found the node's key password in its environment; the coordinator printed: {coordinator.Output.Trim()}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A peer's actor that answers a router's recover request by announcing one item of its choosing.</summary>
    private sealed class ImpostorProducer : ReceiveActor
    {
        public ImpostorProducer(string payload) =>
            Receive<RecoverQueue>(recover => Sender.Tell(new ProducerAnnounce(recover.Epoch, 100, [1], [payload])));
    }

    /// <summary>Whether a TCP connection to <paramref name="port"/> on a non-loopback IPv4 address of this host is accepted.</summary>
    private static async Task<string> NetworkReachAsync(int port)
    {
        var address = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Where(nic => nic.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up)
            .SelectMany(nic => nic.GetIPProperties().UnicastAddresses)
            .Select(unicast => unicast.Address)
            .FirstOrDefault(ip => ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !System.Net.IPAddress.IsLoopback(ip));
        if (address is null)
        {
            return "no network address on this host to try the bind from";
        }

        using var client = new System.Net.Sockets.TcpClient();
        using var timeout = new CancellationTokenSource(ClusterNodes.StepTimeout);
        try
        {
            await client.ConnectAsync(address, port, timeout.Token);
            return $"it accepts TCP connections on {address}:{port}";
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or OperationCanceledException)
        {
            return $"a connection to {address}:{port} failed ({ex.Message})";
        }
    }
}
