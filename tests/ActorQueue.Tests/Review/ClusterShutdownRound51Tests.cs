using System.Diagnostics;
using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A machine's shutdown, as systemd does it: the coordinator and its worker nodes get SIGTERM together. The workers
/// leave and hand their running jobs back; the stopped run starts none of them again, counts them as not started (not
/// logged, so <c>--resume</c> runs them) and ends, interrupted (found by h230 testing certificate expiry, round 51).
/// </summary>
[Collection(ClusterProcessWaitsCollection.Name)]
public sealed class ClusterShutdownRound51Tests : IDisposable
{
    /// <summary>Jobs 1 and 2 end at once; the others run until the file <c>fast</c> exists (the resumed run's).</summary>
    private const string Command = "touch started-{}; [ {} -le 2 ] || [ -e fast ] || sleep 60; echo job{}";

    private const int Jobs = 8;

    private readonly string _dir = Directory.CreateTempSubdirectory("actorqueue-shutdown-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// SIGTERM to the coordinator and both workers while four jobs run on the workers (at once, workers first, or the
    /// coordinator first): the coordinator exits 130 by itself, the joblog holds only the two finished jobs, and a
    /// <c>--resume</c> run completes exactly the rest: every job once over both runs.
    /// </summary>
    /// <remarks>
    /// Failed before (all three orders): "actorqueue run --cluster --listen 127.0.0.1:P --insecure-loopback --min-nodes 2
    /// -j 4 --joblog log.tsv ... did not exit: ... terminated (SIGTERM): no new jobs start; running jobs finish (Ctrl-C
    /// kills them) ... actorqueue: 2/8 done, 4 running, 2 waiting, 0 failed, 0.0 jobs/s, ETA 180s" — the jobs the
    /// leaving workers handed back waited in the cluster's queue for a worker that never came, and the run counted them
    /// as running for ever. Mutants: never giving up a handed-back job (no worker check) fails the same way; reporting
    /// it as a failed attempt instead of not started fails "stopped early, 6 queued job(s) not started" (and logs it).
    /// </remarks>
    [Theory]
    [InlineData("together")]
    [InlineData("workers-first")]
    [InlineData("coordinator-first")]
    public async Task A_run_whose_workers_stop_with_it_ends_interrupted_and_resume_runs_the_handed_back_jobs(string order)
    {
        File.WriteAllLines(Path.Combine(_dir, "jobs.txt"), Enumerable.Range(1, Jobs).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var seed = $"127.0.0.1:{TestPorts.Free()}";
        int exit;
        using (var coordinator = new RunningCli(_dir, "run", "--cluster", "--listen", seed, "--insecure-loopback", "--min-nodes", "2", "-j", "4",
                   "--joblog", "log.tsv", Command, "::::", "jobs.txt"))
        {
            await coordinator.WaitForErrorsAsync("waiting for 2 worker node(s)");
            using var first = new RunningCli(_dir, "node", "--seed", seed, "--insecure-loopback", "-j", "2");
            using var second = new RunningCli(_dir, "node", "--seed", seed, "--insecure-loopback", "-j", "2");

            // Jobs 1 and 2 finished and four long ones run on the workers (two each: -j 2 per node).
            await Poll.UntilAsync(() => Logged().Count == 2 && Enumerable.Range(3, 4).All(i => File.Exists(Path.Combine(_dir, $"started-{i}"))),
                ClusterNodes.StepTimeout, () => $"four jobs did not start on the workers: {coordinator.Errors}", TimeSpan.FromMilliseconds(50));

            switch (order)
            {
                case "together":
                    await SignalAsync("TERM", coordinator.Pid, first.Pid, second.Pid);
                    break;
                case "workers-first":
                    await SignalAsync("TERM", first.Pid, second.Pid);
                    Assert.Equal(130, await first.ExitAsync());
                    Assert.Equal(130, await second.ExitAsync());
                    await SignalAsync("TERM", coordinator.Pid);
                    break;
                default:
                    await SignalAsync("TERM", coordinator.Pid);
                    await coordinator.WaitForErrorsAsync("terminated (SIGTERM)");
                    await SignalAsync("TERM", first.Pid, second.Pid);
                    break;
            }

            exit = await coordinator.ExitAsync(TimeSpan.FromSeconds(60));
            Assert.True(exit == 130, $"exit {exit}: {coordinator.Errors}");
            // The four handed back and the two still queued: not started, and not logged.
            Assert.Contains("stopped early, 6 queued job(s) not started (--resume runs them)", coordinator.Errors, StringComparison.Ordinal);
            Assert.Equal(["job1", "job2"], coordinator.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
            Assert.Equal(130, await first.ExitAsync());
            Assert.Equal(130, await second.ExitAsync());
        }

        // Only the finished jobs are logged.
        Assert.Equal([1L, 2L], Logged().Order());

        // The resumed run runs exactly the rest.
        File.WriteAllText(Path.Combine(_dir, "fast"), "");
        Assert.Equal(Enumerable.Range(3, Jobs - 2).Select(i => $"job{i}").Order(), (await ResumeAsync(_dir, Command)).Order());
        Assert.Equal(Enumerable.Range(1, Jobs).Select(i => (long)i), Logged().Order());
    }

    /// <summary>
    /// Runs <paramref name="command"/> over <c>jobs.txt</c> in <paramref name="dir"/> again with <c>--resume</c> (its
    /// joblog <c>log.tsv</c>), on a new coordinator and one worker node (<c>-j 4</c> each): both exit 0; returns the run's
    /// output lines. Also ClusterStopWithdrawRound52Tests'.
    /// </summary>
    internal static async Task<string[]> ResumeAsync(string dir, string command)
    {
        var seed = $"127.0.0.1:{TestPorts.Free()}";
        using var resumed = new RunningCli(dir, "run", "--cluster", "--listen", seed, "--insecure-loopback", "-j", "4",
            "--joblog", "log.tsv", "--resume", command, "::::", "jobs.txt");
        await resumed.WaitForErrorsAsync("waiting for 1 worker node(s)");
        using var node = new RunningCli(dir, "node", "--seed", seed, "--insecure-loopback", "-j", "4");
        var exit = await resumed.ExitAsync();
        Assert.True(exit == 0, $"exit {exit}: {resumed.Errors}");
        Assert.Equal(0, await node.ExitAsync());
        return resumed.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>The sequence numbers the joblog records.</summary>
    private List<long> Logged() => LoggedSeqs(_dir);

    /// <summary>The sequence numbers <c>log.tsv</c> in <paramref name="dir"/> records (none before it exists); also ClusterStopWithdrawRound52Tests'.</summary>
    internal static List<long> LoggedSeqs(string dir)
    {
        var path = Path.Combine(dir, "log.tsv");
        return File.Exists(path)
            ? [.. File.ReadAllLines(path).Skip(1).Where(line => line.Length > 0).Select(line => long.Parse(line.Split('\t')[0], System.Globalization.CultureInfo.InvariantCulture))]
            : [];
    }

    /// <summary>One <c>kill</c> for every process: the signals go out together, as at a machine's shutdown.</summary>
    private static async Task SignalAsync(string signal, params int[] pids)
    {
        using var kill = Process.Start("kill", [$"-{signal}", "--", .. pids.Select(pid => pid.ToString(System.Globalization.CultureInfo.InvariantCulture))])!;
        await kill.WaitForExitAsync();
        Assert.True(kill.ExitCode == 0, $"kill -{signal} failed");
    }
}
