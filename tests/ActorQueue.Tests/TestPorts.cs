using System.Net;
using System.Net.Sockets;

namespace ActorQueue.Tests;

/// <summary>
/// Loopback ports for the processes and listeners a test starts. The two test assemblies run at once (`dotnet test`
/// runs ActorQueue.Tests and ActorQueue.ClusterTests side by side), so each takes its ports from its own half of the
/// system's ephemeral range: a port one of them probed, freed and handed to a process is never handed out by the other.
/// </summary>
internal static class TestPorts
{
    /// <summary>Ports <see cref="Free"/> has handed out in this test process.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, byte> HandedOut = new();

    /// <summary>Whether this assembly takes the upper half of the ephemeral range (the cluster tests) or the lower.</summary>
    private static readonly bool Upper = typeof(TestPorts).Assembly.GetName().Name == "ActorQueue.ClusterTests";

    /// <summary>
    /// A loopback port free now, in this assembly's half of the ephemeral range, and never handed out before in this
    /// test process (a port the system gave to bind(0) elsewhere, e.g. an Akka node listening on port 0, may still be
    /// probed: a probe that finds it in use tries another). The system may give a port it has just freed again: two calls in a row once returned the same port
    /// for a coordinator and its node, whose <c>--seed</c> then was its own <c>--listen</c> (a usage error;
    /// <c>CliLeftoversReviewTests</c> timed out).
    /// </summary>
    internal static int Free()
    {
        var (low, high) = Half;
        for (var tries = 0; tries < 1000; tries++)
        {
            // Linux gives bind(0) ports of the range's lower part only: a port in this assembly's half is chosen here
            // and probed by binding it.
            var port = Random.Shared.Next(low, high + 1);
            if (HandedOut.ContainsKey(port))
            {
                continue;
            }

            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
            }
            catch (SocketException)
            {
                continue; // in use
            }

            if (HandedOut.TryAdd(port, 0))
            {
                return port;
            }
        }

        throw new InvalidOperationException($"No free loopback port in {low}..{high} that this test process has not handed out already in 1,000 tries.");
    }

    /// <summary>This assembly's half of the system's ephemeral port range (Linux's 32768–60999 when it cannot be read).</summary>
    private static readonly (int Low, int High) Half = ReadHalf();

    private static (int Low, int High) ReadHalf()
    {
        var (low, high) = (32768, 60999);
        try
        {
            var range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            (low, high) = (int.Parse(range[0]), int.Parse(range[1]));
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
        }

        var middle = (low + high) / 2;
        return Upper ? (middle + 1, high) : (low, middle);
    }
}
