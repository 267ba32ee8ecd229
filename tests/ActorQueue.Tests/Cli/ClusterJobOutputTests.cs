using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Cli;

/// <summary>A remote job's output comes back byte for byte, and output too large for one cluster message fails the job instead of hanging the run.</summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class ClusterJobOutputTests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    /// <summary>The most output a remote job's result carries (ClusterJobs.MaxResultBytes).</summary>
    private const int MaxResultBytes = 64 * 1024;

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public async Task A_remote_jobs_output_is_byte_exact_and_too_much_of_it_fails_the_job_instead_of_hanging_the_run()
    {
        var jobs = _scratch.Write("jobs.jsonl",
            """{"id": "binary", "cmd": "printf '\\377\\000\\200'"}""",
            """{"id": "huge", "cmd": "head -c 200000 /dev/zero | tr '\\000' x"}""");
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var listen = $"127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
        listener.Stop();

        var run = CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--jsonl", "-j", "2", "--joblog", "log.tsv", "--cluster", "--listen", listen,
            "--cert-dir", certificates.Coordinator);
        using var node = Process.Start(CliProcess.StartInfo(_scratch.Dir, "node", "--seed", listen, "-j", "2", "--cert-dir", certificates.Worker))!;
        node.StandardInput.Close();
        var nodeErrors = node.StandardError.ReadToEndAsync();
        var result = await run;
        await node.WaitForExitAsync().WaitAsync(ClusterNodes.StepTimeout);

        Assert.True(result.ExitCode == 1, result.Errors + await nodeErrors);
        Assert.Contains($"actorqueue: job huge failed: its output (200000 bytes) is more than a cluster result carries ({MaxResultBytes} bytes)", result.Errors);
        byte[] binary = [0xFF, 0x00, 0x80];
        byte[] huge = [.. Enumerable.Repeat((byte)'x', MaxResultBytes)];
        Assert.True(result.OutputBytes.SequenceEqual([.. binary, .. huge]) || result.OutputBytes.SequenceEqual([.. huge, .. binary]),
            "the binary job's bytes exactly, and what fits of the huge one");
        var log = File.ReadAllLines(_scratch.PathOf("log.tsv")).Skip(1).Select(line => line.Split('\t')).ToDictionary(f => f[0], f => f[6]);
        Assert.Equal(new Dictionary<string, string> { ["1"] = "0", ["2"] = "-1" }, log);
    }
}
