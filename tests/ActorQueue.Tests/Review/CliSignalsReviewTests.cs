using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Helper 168's review of the CLI's signals. RunSignalTests' SIGINT and SIGQUIT cases "hung" (no "interrupted" line,
/// no exit) only when the test host had been started in the background of a non-interactive shell, which ignores
/// SIGINT and SIGQUIT for it: its children inherit the ignored signals and .NET keeps them ignored, so the runner never
/// saw them. The tests now start the runner with both at their defaults, as a terminal's foreground job has them.
/// </summary>
public sealed class CliSignalsReviewTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Theory]
    [InlineData("INT", "interrupted")]
    [InlineData("QUIT", "quit (SIGQUIT)")]
    public async Task A_runner_the_tests_start_from_a_parent_that_ignores_sigint_and_sigquit_still_stops_on_them(string signal, string said)
    {
        if (CliProcess.Program != "env")
        {
            return; // this machine's env has no --default-signal (coreutils before 8.31, busybox): the tests run dotnet as they did, unprotected
        }

        var release = _scratch.PathOf("release");
        var started = _scratch.PathOf("started");
        var jobs = _scratch.Write("jobs.txt", $"touch {started}; until [ -e {release} ]; do sleep 0.02; done");
        // As `dotnet test ... &` in a script leaves the test host: SIGINT and SIGQUIT ignored, inherited by what it starts.
        var start = CliProcess.StartInfo(_scratch.Dir, "run", jobs, "-j", "1");
        start.ArgumentList.Insert(0, start.FileName);
        foreach (var word in new[] { "sh", "trap '' INT QUIT; exec \"$@\"", "-c" })
        {
            start.ArgumentList.Insert(0, word);
        }

        start.FileName = "sh";
        using var run = Process.Start(start)!;
        run.StandardInput.Close();
        var errors = new ConcurrentQueue<string>();
        run.ErrorDataReceived += (_, e) => errors.Enqueue(e.Data ?? "");
        run.BeginErrorReadLine();
        try
        {
            await Poll.UntilAsync(() => File.Exists(started), TimeSpan.FromSeconds(60), "the job started", CliScratch.Tick);
            var ignored = Ignored(run.Id);
            Assert.True((ignored & 0b110) == 0, $"the runner ignores SIGINT or SIGQUIT (SigIgn {ignored:x}): a signal the tests send it is lost");

            await CliProcess.SignalAsync(run.Id, signal);
            await Poll.UntilAsync(() => errors.Any(line => line.Contains(said, StringComparison.Ordinal)), TimeSpan.FromSeconds(60),
                $"a '{said}' line after SIG{signal}", CliScratch.Tick);
        }
        finally
        {
            File.WriteAllText(release, "");
            if (!await Poll.CompletesWithin(run.WaitForExitAsync(), TimeSpan.FromSeconds(60)))
            {
                run.Kill(entireProcessTree: true);
            }
        }

        Assert.Equal(130, run.ExitCode);
    }

    /// <summary>dead-letters on a file that is no run's state refused it but left FILE.lock beside it (the lock comes first).</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_file_refused_as_no_state_keeps_no_lock_file_the_refusal_made_and_one_that_was_there(bool lockWasThere)
    {
        var path = _scratch.Write("notes.txt", "not a state");
        var lockFile = path + ".lock";
        if (lockWasThere)
        {
            File.WriteAllText(lockFile, "");
        }

        Assert.Throws<ActorQueue.Cli.Jobs.RunStateException>(() => ActorQueue.Cli.Jobs.RunState.Open(path, create: false));

        Assert.Equal(lockWasThere, File.Exists(lockFile));
        Assert.Equal("not a state", File.ReadAllText(path).Trim());
    }

    /// <summary>The signals <paramref name="pid"/> ignores, as a mask (bit n-1 for signal n), from /proc.</summary>
    private static ulong Ignored(int pid) => ulong.Parse(
        File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("SigIgn:", StringComparison.Ordinal))["SigIgn:".Length..].Trim(),
        NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
