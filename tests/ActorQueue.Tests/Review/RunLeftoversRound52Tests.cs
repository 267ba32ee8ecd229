using ActorQueue.Cli.Jobs;
using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 52: what round 51 left open of "a run that did not start leaves nothing it made". A refused run left the
/// durable queue's name lock file (<c>S.jobs-*.lock</c>) it made, and a run interrupted before any job started (waiting
/// for its FIFO input, or for the input its state recorded) left the empty <c>--results</c> directory and the empty new
/// <c>--joblog</c> it made. Every test works in a scratch directory of its own; what another process made or holds
/// (a lock file, an existing directory or joblog) must stay.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("macos")]
public sealed class RunLeftoversRound52Tests : IDisposable
{
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(60);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// A copy of a state (T, beside its original S) run with another input is refused; the copy's queue lock file
    /// (<c>T.jobs-*.lock</c>) is this run's own (nothing was there), so it goes with T.lock, the joblog, log and results
    /// the run made. Failed before: "the refused run left [T.jobs-5d9a17cb.lock]". Mutant: the queue lock never
    /// removed (fails alike).
    /// </summary>
    [Fact]
    public async Task A_refused_run_removes_the_queue_lock_file_it_made()
    {
        Assert.Equal(0, (await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "--state", "S", "echo {}", ":::", "a", "b")).ExitCode);
        File.Copy(_scratch.PathOf("S"), _scratch.PathOf("T"));
        var before = _scratch.Entries();

        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "--state", "T", "--joblog", "J", "--log", "L", "--results", "R", "echo {}", ":::", "x", "y");

        Assert.True(result.ExitCode == 255, $"exit {result.ExitCode}: {result.Errors}");
        Assert.StartsWith("actorqueue: --state: 'T' records job 1 as 'echo a', but the input now gives 'echo x'", result.Errors, StringComparison.Ordinal);
        Assert.True(before.SequenceEqual(_scratch.Entries()), $"the refused run left [{string.Join(", ", _scratch.Entries().Except(before))}]");
    }

    /// <summary>
    /// The queue lock file of a state that was there before the run (an earlier run made it) stays when the run is
    /// refused: it is no more this run's than the state is. Passed before (a control). Mutant: the queue lock file
    /// removed whenever a refused run opened the queue (fails: "removed [S.jobs-5d9a17cb.lock]").
    /// </summary>
    [Fact]
    public async Task A_refused_run_keeps_the_queue_lock_file_that_was_there()
    {
        Assert.Equal(0, (await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "--state", "S", "echo {}", ":::", "a", "b")).ExitCode);
        var before = _scratch.Entries();
        Assert.Single(before, entry => entry.StartsWith("S.jobs-", StringComparison.Ordinal) && entry.EndsWith(".lock", StringComparison.Ordinal));

        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "--state", "S", "--joblog", "J", "echo {}", ":::", "x", "y");

        Assert.True(result.ExitCode == 255, $"exit {result.ExitCode}: {result.Errors}");
        Assert.True(before.SequenceEqual(_scratch.Entries()),
            $"the refused run left [{string.Join(", ", _scratch.Entries().Except(before))}], removed [{string.Join(", ", before.Except(_scratch.Entries()))}]");
    }

    /// <summary>
    /// The queue lock file the run made is removed only while nobody else holds it: here another open of it holds its
    /// lock (as a process that opened the file between the run's creating it and its queue's lock would). Passed before
    /// (nothing was removed). Mutant: removed without taking the lock first (fails: the held lock file is gone).
    /// </summary>
    [Fact]
    public void A_queue_lock_file_the_run_made_is_never_removed_while_another_holds_it()
    {
        var lockPath = DurableJobQueue.LockPathOf(_scratch.PathOf("S"));
        var state = RunState.Open(_scratch.PathOf("S"), create: true);
        state.CreateQueueLock(lockPath);
        Assert.True(File.Exists(lockPath));
        using (new FileStream(lockPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
            state.DisposeAndRemoveIfMade();
            Assert.True(File.Exists(lockPath), "the lock file another holder holds was removed");
        }

        // Held by nobody: the one this state made goes with it.
        var second = RunState.Open(_scratch.PathOf("U"), create: true);
        var secondLock = DurableJobQueue.LockPathOf(_scratch.PathOf("U"));
        second.CreateQueueLock(secondLock);
        second.DisposeAndRemoveIfMade();
        Assert.False(File.Exists(secondLock), "the lock file the state made was left");
        Assert.Equal([Path.GetFileName(lockPath)], _scratch.Entries()); // the states and their S.lock, made by their opens, went too
    }

    /// <summary>
    /// SIGTERM while the run waits for its FIFO input (as a job file, or <c>-a</c>) to be opened by a writer: exit 130,
    /// and the results directory the run made (with the parent it needed) is gone, as nothing was written to it.
    /// Failed before: "the interrupted run left [made, made/out]". Mutant: the results directory kept after an
    /// interruption (fails alike).
    /// </summary>
    [Theory]
    [InlineData("jobs.fifo")]
    [InlineData("-a jobs.fifo echo")]
    public async Task Sigterm_while_waiting_for_the_fifo_input_removes_the_results_directory_it_made(string input)
    {
        await _scratch.FifoAsync("jobs.fifo");
        var before = _scratch.Entries();
        using var run = new RunningCli(_scratch.Dir, ["run", "--results", "made/out", .. input.Split(' ')]);
        // Made after the signal handlers are in place and just before the input opens.
        await Poll.UntilAsync(() => Directory.Exists(_scratch.PathOf("made/out")), ExitWithin, () => $"the run made --results:\n{run.Errors}", CliScratch.Tick);

        await CliProcess.SignalAsync(run.Pid, "TERM");

        Assert.Equal(130, await run.ExitAsync(ExitWithin));
        Assert.Contains("actorqueue: interrupted while opening or reading the input; no job started", run.Errors, StringComparison.Ordinal);
        Assert.True(before.SequenceEqual(_scratch.Entries()), $"the interrupted run left [{string.Join(", ", _scratch.Entries().Except(before))}]");
    }

    /// <summary>
    /// An accepted run keeps what it made even when nothing was written to it: a run of no jobs keeps its empty results
    /// directory and its joblog (a header only). Passed before (a control). Mutant: the run not marked accepted
    /// (<c>RunOutputs.Accept</c> not called) fails: "the run of no jobs removed [R]" (the joblog has its header).
    /// </summary>
    [Fact]
    public async Task A_run_of_no_jobs_keeps_the_empty_results_directory_and_joblog_it_made()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "--results", "R", "--joblog", "J", "-"); // no job on stdin

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Errors}");
        Assert.True(new[] { "J", "R" }.SequenceEqual(_scratch.Entries()), $"the run of no jobs removed [{string.Join(", ", new[] { "J", "R" }.Except(_scratch.Entries()))}]");
        Assert.Equal(CliScratch.JobLogHeader + "\n", await File.ReadAllTextAsync(_scratch.PathOf("J")));
    }

    /// <summary>
    /// A results directory that was there before the run (empty) stays when the run is interrupted before it starts.
    /// Passed before (a control). Mutant: the results directory removed whenever it is empty (fails).
    /// </summary>
    [Fact]
    public async Task An_interrupted_run_keeps_the_results_directory_that_was_there()
    {
        await _scratch.FifoAsync("jobs.fifo");
        Directory.CreateDirectory(_scratch.PathOf("out"));
        var before = _scratch.Entries();
        // Without the runtime's diagnostics, whose debugger FIFOs wait for a partner too.
        var noDiagnostics = new Dictionary<string, string> { ["DOTNET_EnableDiagnostics"] = "0" };
        using var run = new RunningCli(_scratch.Dir, noDiagnostics, "run", "--results", "out", "jobs.fifo");
        await Poll.UntilAsync(() => CliProcess.WaitsForFifoPartner(run.Pid), ExitWithin, () => $"the run waits to open its input:\n{run.Errors}", CliScratch.Tick);

        await CliProcess.SignalAsync(run.Pid, "TERM");

        Assert.Equal(130, await run.ExitAsync(ExitWithin));
        Assert.True(before.SequenceEqual(_scratch.Entries()), $"removed [{string.Join(", ", before.Except(_scratch.Entries()))}]");
    }

    /// <summary>
    /// A restart with <c>--state</c> reads the input as far as the state recorded before anything starts; its FIFO input
    /// was opened by a writer that writes nothing. SIGTERM then ends a run no job of which started: the new joblog it made
    /// (never begun: no header, no record) and its results directory go, as after a refusal; an existing empty joblog
    /// stays as it was. The new --log stays: it gets the run's events (its queue started and stopped), as a stop before
    /// the run was accepted writes them. Failed before: "the interrupted run left [J, R]" (J empty), and "[R]" beside an existing J. Mutants: the joblog
    /// kept (fails alike); every empty joblog removed, made or not (fails for the existing one).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Sigterm_before_a_restart_read_its_recorded_jobs_removes_the_new_joblog_and_results(bool joblogExisted)
    {
        _scratch.Write("jobs", "echo a", "echo b");
        Assert.Equal(0, (await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "--state", "S", "jobs")).ExitCode);
        var fifo = await _scratch.FifoAsync("jobs.fifo");
        if (joblogExisted)
        {
            await File.WriteAllBytesAsync(_scratch.PathOf("J"), []);
        }

        var before = _scratch.Entries();
        using var run = new RunningCli(_scratch.Dir, "run", "--state", "S", "--joblog", "J", "--log", "L", "--results", "R", "jobs.fifo");
        // The writer's open waits for the run's; it writes nothing, so the run waits in the input for its recorded jobs.
        await using var writer = await Task.Run(() => new FileStream(fifo, FileMode.Open, FileAccess.Write)).WaitAsync(ExitWithin);
        await Poll.UntilAsync(() => CliProcess.HasOpen(run.Pid, _scratch.PathOf("J")), ExitWithin, () => $"the run opened --joblog:\n{run.Errors}", CliScratch.Tick);

        await CliProcess.SignalAsync(run.Pid, "TERM");

        Assert.Equal(130, await run.ExitAsync(ExitWithin));
        Assert.Contains("0 jobs in", run.Errors, StringComparison.Ordinal);
        Assert.True(File.Exists(_scratch.PathOf("L")), "the log of the stopped run was removed");
        string[] expected = [.. before.Append("L").Order(StringComparer.Ordinal)];
        Assert.True(expected.SequenceEqual(_scratch.Entries()),
            $"the interrupted run left [{string.Join(", ", _scratch.Entries().Except(expected))}], removed [{string.Join(", ", expected.Except(_scratch.Entries()))}]");
        if (joblogExisted)
        {
            Assert.Equal(0, new FileInfo(_scratch.PathOf("J")).Length);
        }
    }
}

/// <summary>Round 52: a cluster coordinator interrupted while it waits for its worker nodes started no job.</summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class CoordinatorLeftoversRound52Tests : IDisposable
{
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(60);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// SIGTERM while the coordinator waits for a worker node (none comes): exit 130, and the new joblog (never begun) and
    /// results directory it made are gone; its new log stays with the events it has. Failed before: "the interrupted
    /// coordinator left [J, R]". Mutant: the results directory and joblog kept after an interruption (fails alike).
    /// </summary>
    [Fact]
    public async Task Sigterm_while_the_coordinator_waits_for_nodes_removes_the_joblog_and_results_it_made()
    {
        var port = TestPorts.Free();
        var before = _scratch.Entries();
        using var coordinator = new RunningCli(_scratch.Dir, "run", "-", "--cluster", "--min-nodes", "1", "--listen", $"127.0.0.1:{port}",
            "--insecure-loopback", "--joblog", "J", "--results", "R", "--log", "L");
        await coordinator.WaitForErrorsAsync("waiting for 1 worker node(s)");
        Assert.True(File.Exists(_scratch.PathOf("J")) && Directory.Exists(_scratch.PathOf("R")), $"the coordinator made J and R: [{string.Join(", ", _scratch.Entries())}]");

        await CliProcess.SignalAsync(coordinator.Pid, "TERM");

        Assert.Equal(130, await coordinator.ExitAsync(ExitWithin));
        Assert.Contains("actorqueue: interrupted while waiting for worker nodes; no job started", coordinator.Errors, StringComparison.Ordinal);
        string[] expected = [.. before.Append("L").Order(StringComparer.Ordinal)];
        Assert.True(expected.SequenceEqual(_scratch.Entries()), $"the interrupted coordinator left [{string.Join(", ", _scratch.Entries().Except(expected))}]");
    }
}
