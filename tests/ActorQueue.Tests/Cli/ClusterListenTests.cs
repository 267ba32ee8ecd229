using System.Net;
using System.Net.Sockets;

namespace ActorQueue.Tests.Cli;

/// <summary>A <c>--listen</c> address another process holds is a one-line usage error, for the coordinator and for a node.</summary>
public sealed class ClusterListenTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Theory]
    [InlineData("run")]
    [InlineData("node")]
    public async Task A_listen_port_in_use_is_a_one_line_usage_error(string command)
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var listen = $"127.0.0.1:{((IPEndPoint)holder.LocalEndpoint).Port}";
        string[] args = command == "run"
            ? ["run", "-", "--cluster", "--listen", listen, "--insecure-loopback"]
            : ["node", "--seed", $"127.0.0.1:{TestPorts.Free()}", "--listen", listen, "--insecure-loopback"];

        var result = await CliProcess.RunAsync(_scratch.Dir, "echo never\n", args);

        Assert.True(result.ExitCode == 255, result.Errors);
        Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries), e => e.StartsWith("actorqueue: ", StringComparison.Ordinal) && e.Contains(listen, StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", result.Errors, StringComparison.Ordinal);
        Assert.Equal("", result.Output);
    }
}
